// PostgresEventStore: the EventStore on PostgreSQL.
//
// Appends are one prepared call of annals.append_events on an autocommit connection: one round
// trip, atomic, with every check inside the database (ARCHITECTURE decisions 2-4). Event ids
// are assigned on the client before the first attempt, so retrying after a broken connection
// is an exact re-send and the database answers with the original result (decision 4).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "after_commit_notifier.hpp"
#include "annals/eventstore/detail/catch_up_subscription.hpp"
#include "annals/eventstore/detail/encoded_event.hpp"
#include "annals/eventstore/detail/metrics_recorder.hpp"
#include "annals/eventstore/detail/stored_event.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "append_codes.hpp"
#include "array_literal.hpp"
#include "binary_array.hpp"
#include "change_signal.hpp"
#include "connection_pool.hpp"
#include "connection_string.hpp"
#include "database_checks.hpp"
#include "db_error.hpp"
#include "group_commit.hpp"
#include "libpq_connection.hpp"
#include "pooled_call.hpp"
#include "postgres_event_store_internal.hpp"
#include "row_decoding.hpp"
#include "sql.hpp"
#include "watchdog.hpp"

namespace annals::postgres {
namespace {

using annals::detail::EncodedEvent;

using detail::AppendOutcome;
using detail::ArrayLiteral;
using detail::BinaryArray;
using detail::decode_event;
using detail::ElementType;
using detail::EventRow;
using detail::expected_code;
using detail::logger;

// The most event payload (data + metadata) a group of single-event appends carries, unless
// it holds only one append.
constexpr std::size_t kGroupCommitMaxBytes = std::size_t{1} << 20;

// Names an append to one stream in error messages and logs, on both append paths.
std::string describe_append(const StreamId& stream) {
  return "append to stream \"" + stream.value() + "\"";
}

using detail::parse_int;

std::int64_t clamp_count(std::size_t count) {
  return count > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(count);
}

// The streams of an append with their expectations, and their events, encoded.
using AppendTargets = std::vector<std::pair<const StreamId*, ExpectedVersion>>;
using EncodedAppends = std::vector<std::vector<EncodedEvent>>;

// The array parameters $1-$8 of sql::kAppend (annals.append_events), in binary format.
struct AppendArrays {
  std::string streams;
  std::string expected;
  std::string counts;
  std::string ids;
  std::string types;
  std::string schema_versions;
  std::string data;
  std::string metadata;
};

AppendArrays append_arrays(const AppendTargets& streams, const EncodedAppends& encoded) {
  std::size_t events = 0;
  std::size_t type_bytes = 0;
  std::size_t data_bytes = 0;
  std::size_t metadata_bytes = 0;
  for (const auto& stream : encoded) {
    events += stream.size();
    for (const auto& event : stream) {
      type_bytes += event.type.size();
      data_bytes += event.data.size();
      metadata_bytes += event.metadata.size();
    }
  }
  constexpr std::size_t kPerElement = 5;  // length + jsonb's version byte
  BinaryArray stream_ids(ElementType::kText), expected(ElementType::kInt8),
      counts(ElementType::kInt4), ids(ElementType::kUuid, events * 20),
      types(ElementType::kText, type_bytes + events * kPerElement),
      schema_versions(ElementType::kInt4, events * 8),
      data(ElementType::kJsonb, data_bytes + events * kPerElement),
      metadata(ElementType::kJsonb, metadata_bytes + events * kPerElement);
  for (std::size_t s = 0; s < streams.size(); ++s) {
    stream_ids.add_text(streams[s].first->value());
    expected.add_int8(expected_code(streams[s].second));
    counts.add_int4(static_cast<std::int32_t>(encoded[s].size()));
    for (const auto& event : encoded[s]) {
      ids.add_uuid(event.id.uuid());
      types.add_text(event.type);
      schema_versions.add_int4(event.schema_version);
      data.add_jsonb(event.data);
      metadata.add_jsonb(event.metadata);
    }
  }
  return AppendArrays{
      .streams = std::move(stream_ids).finish(),
      .expected = std::move(expected).finish(),
      .counts = std::move(counts).finish(),
      .ids = std::move(ids).finish(),
      .types = std::move(types).finish(),
      .schema_versions = std::move(schema_versions).finish(),
      .data = std::move(data).finish(),
      .metadata = std::move(metadata).finish(),
  };
}

// Every statement of the pooled connections, prepared when a connection opens. A partitioned
// log with stream heads (sql/0019) gets its own append statements under the same names.
void prepare_statements(detail::LibpqConnection& connection, bool partitioned) {
  connection.prepare(sql::kAppendName, partitioned ? sql::kAppendPartitioned : sql::kAppend);
  connection.prepare(sql::kAppendOneName,
                     partitioned ? sql::kAppendOnePartitioned : sql::kAppendOne);
  connection.prepare(sql::kStreamVersionName, sql::kStreamVersion);
  connection.prepare(sql::kStreamStateName, sql::kStreamState);
  connection.prepare(sql::kSetStreamMetadataName, sql::kSetStreamMetadata);
  connection.prepare(sql::kClearStreamMetadataName, sql::kClearStreamMetadata);
  connection.prepare(sql::kHeadPositionName, sql::kHeadPosition);
  connection.prepare(sql::kReadStreamForwardName, sql::kReadStreamForward);
  connection.prepare(sql::kReadStreamBackwardName, sql::kReadStreamBackward);
  connection.prepare(sql::kReadAllName, sql::kReadAll);
  connection.prepare(sql::kReadAllFilteredName, sql::kReadAllFiltered);
  connection.prepare(sql::kPositionVisibleName, sql::kPositionVisible);
  connection.prepare(sql::kLogReachesName, sql::kLogReaches);
}

// What a pool runs on each new connection: named prepared statements, or (behind a
// transaction pooler) the same statements recorded to be sent unnamed with each call.
// `partitioned`: read when a connection opens (the store sets it, before any connection
// opens, from what it finds at open).
detail::ConnectionPool<detail::LibpqConnection>::OnConnect statement_setup(
    bool prepared, const bool* partitioned) {
  return [prepared, partitioned](detail::LibpqConnection& connection) {
    if (!prepared) connection.use_unnamed_statements();
    prepare_statements(connection, *partitioned);
  };
}

// Throws InvalidArgumentError naming the first timeout option out of range.
void validate_timeouts(const PostgresEventStoreOptions& options) {
  constexpr std::string_view kOwner = "PostgresEventStoreOptions";
  detail::validate_timeouts(options.connection_timeouts, kOwner);
  detail::validate_duration(options.acquire_timeout, kOwner, "acquire_timeout", false);
  detail::validate_duration(options.call_timeout, kOwner, "call_timeout", false);
  detail::validate_duration(options.read_statement_timeout, kOwner, "read_statement_timeout", true);
  detail::validate_duration(options.initial_reconnect_backoff, kOwner, "initial_reconnect_backoff",
                            false);
  detail::validate_duration(options.max_reconnect_backoff, kOwner, "max_reconnect_backoff", false);
  detail::validate_duration(options.standby_replay_timeout, kOwner, "standby_replay_timeout",
                            false);
  if (options.max_reconnect_backoff < options.initial_reconnect_backoff) {
    throw InvalidArgumentError(std::string(kOwner) + "::max_reconnect_backoff (" +
                               std::to_string(options.max_reconnect_backoff.count()) +
                               " ms) must be at least initial_reconnect_backoff (" +
                               std::to_string(options.initial_reconnect_backoff.count()) + " ms)");
  }
}

// The options with the connection timeouts written into the connection string, which every
// connection of the store (pool, notifier, LISTEN connections) is opened with.
PostgresEventStoreOptions with_connection_timeouts(PostgresEventStoreOptions options) {
  options.connection_string =
      detail::with_timeouts(options.connection_string, options.connection_timeouts);
  if (!options.standby_connection_string.empty()) {
    options.standby_connection_string =
        detail::with_timeouts(options.standby_connection_string, options.connection_timeouts);
  }
  // Session work goes to the primary itself when a pooler is in between (see the option).
  options.session_connection_string =
      options.session_connection_string.empty()
          ? options.connection_string
          : detail::with_timeouts(options.session_connection_string, options.connection_timeouts);
  return options;
}

// --- The store -------------------------------------------------------------------------------

class PostgresEventStore final : public EventStore {
 public:
  explicit PostgresEventStore(PostgresEventStoreOptions options)
      : options_(with_connection_timeouts(std::move(options))),
        read_statement_timeout_(options_.read_statement_timeout.count() > 0
                                    ? std::to_string(options_.read_statement_timeout.count())
                                    : std::string()),
        watchdog_(std::make_shared<detail::Watchdog>(options_.call_timeout)),
        pool_(options_.connection_string, options_.pool_size,
              statement_setup(options_.prepare_statements, &partitioned_log_),
              options_.acquire_timeout),
        standby_pool_(options_.standby_connection_string.empty()
                          ? nullptr
                          : std::make_unique<detail::ConnectionPool<detail::LibpqConnection>>(
                                options_.standby_connection_string, options_.pool_size,
                                statement_setup(options_.prepare_statements, &partitioned_log_),
                                options_.acquire_timeout)),
        group_commit_(std::min(options_.group_commit_in_flight, options_.pool_size),
                      options_.group_commit_max_appends, kGroupCommitMaxBytes),
        notifier_(options_.session_connection_string, store_backoff(), call_bound()),
        metrics_(options_.metrics) {
    check_database();
  }

  [[nodiscard]] std::size_t appends_waiting_for_group() const { return group_commit_.waiting(); }

  AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                      std::vector<NewEvent> events) override {
    if (!metrics_.enabled()) return append_unmeasured(stream, expected, std::move(events));
    return measured_append([&](bool& wrote) {
      auto result = append_unmeasured(stream, expected, std::move(events), &wrote);
      return result;
    });
  }

  std::vector<AppendResult> append_multi(std::vector<StreamAppend> appends) override {
    if (!metrics_.enabled()) return append_multi_unmeasured(std::move(appends));
    return measured_append(
        [&](bool& wrote) { return append_multi_unmeasured(std::move(appends), &wrote); });
  }

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    if (!metrics_.enabled()) return read_stream_unmeasured(stream, options);
    return measured_read(kStreamLabels, [&] { return read_stream_unmeasured(stream, options); });
  }

  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    if (!metrics_.enabled()) return read_log(options.after, options.max_count, options.filter);
    return measured_read(
        kAllLabels, [&] { return read_log(options.after, options.max_count, options.filter); });
  }

 private:
  static constexpr MetricLabels kStoreLabels{.store = "postgres"};
  static constexpr MetricLabels kStreamLabels{.store = "postgres", .kind = "stream"};
  static constexpr MetricLabels kAllLabels{.store = "postgres", .kind = "all"};

  // Runs an append (`run(wrote)` sets `wrote` when it wrote events, not an exact re-send),
  // counting its outcome, the events written and its time (metrics.hpp).
  template <typename Run>
  std::invoke_result_t<Run, bool&> measured_append(Run&& run) {
    const auto started = metrics_.start();
    bool wrote = false;
    try {
      auto results = std::forward<Run>(run)(wrote);
      metrics_.append_done(kStoreLabels.store, wrote, wrote ? events_in(results) : 0, started);
      return results;
    } catch (...) {
      metrics_.append_failed(kStoreLabels.store, started);
      throw;
    }
  }

  static std::size_t events_in(const AppendResult& result) {
    return static_cast<std::size_t>(result.last_version - result.first_version + 1);
  }
  static std::size_t events_in(const std::vector<AppendResult>& results) {
    std::size_t events = 0;
    for (const auto& result : results) events += events_in(result);
    return events;
  }

  template <typename Read>
  std::vector<RecordedEvent> measured_read(const MetricLabels& labels, Read&& read) {
    const auto started = metrics_.start();
    auto events = std::forward<Read>(read)();
    metrics_.read_done(labels, events.size(), started);
    return events;
  }

  // `wrote` (optional): set when events were written (not an exact re-send).
  AppendResult append_unmeasured(const StreamId& stream, const ExpectedVersion& expected,
                                 std::vector<NewEvent> events, bool* wrote = nullptr) {
    EncodedAppends encoded;
    encoded.push_back(annals::detail::encode_events(stream, std::move(events), options_.limits));
    // Shared by every statement this append sends: once one of them may have committed, the
    // append can only end in its result, an authoritative refusal or OutcomeUnknownError; and
    // all of them end by one deadline.
    detail::WriteState state{.deadline = call_deadline()};
    if (encoded.front().size() == 1 && !options_.notify_in_transaction) {
      if (auto result = append_one_grouped(stream, expected, encoded.front().front(), state)) {
        if (notify_after_commit()) notifier_.notify();
        if (wrote != nullptr) *wrote = true;
        return std::move(*result);
      }
    }
    AppendTargets streams{{&stream, expected}};
    return std::move(append_encoded(streams, encoded, state, wrote).front());
  }

  std::vector<AppendResult> append_multi_unmeasured(std::vector<StreamAppend> appends,
                                                    bool* wrote = nullptr) {
    annals::detail::validate_multi_append(appends, options_.limits);
    EncodedAppends encoded;
    AppendTargets streams;
    std::optional<ArrayLiteral> reopen;  // p_reopen of annals.append_events; NULL: none
    for (auto& append : appends) {
      encoded.push_back(annals::detail::encode_events(append.stream_id, std::move(append.events),
                                                      options_.limits));
      streams.emplace_back(&append.stream_id, append.expected);
      if (append.reopen) reopen.emplace();
    }
    std::optional<std::string> reopen_text;
    if (reopen) {
      for (const auto& append : appends) reopen->add_plain(append.reopen ? "t" : "f");
      reopen_text = std::move(*reopen).finish();
    }
    detail::WriteState state{.deadline = call_deadline()};
    return append_encoded(streams, encoded, state, wrote,
                          reopen_text ? reopen_text->c_str() : nullptr);
  }

  std::vector<RecordedEvent> read_stream_unmeasured(const StreamId& stream,
                                                    const ReadStreamOptions& options) {
    const bool forward = options.direction == ReadDirection::kForward;
    const std::int64_t from =
        options.from.value_or(forward ? 1 : std::numeric_limits<std::int64_t>::max());
    const std::string from_text = std::to_string(from);
    const std::string limit = std::to_string(clamp_count(options.max_count));
    const std::array<const char*, 3> values{stream.value().c_str(), from_text.c_str(),
                                            limit.c_str()};
    return read_events("read stream \"" + stream.value() + "\"",
                       forward ? sql::kReadStreamForwardName : sql::kReadStreamBackwardName, values,
                       0);
  }

 public:
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    const std::array<const char*, 1> values{stream.value().c_str()};
    const auto rows =
        run("stream version of \"" + stream.value() + "\"", false, sql::kStreamVersionName, values);
    if (rows.empty() || rows.is_null(0, 0)) return std::nullopt;
    return parse_int<std::int64_t>(rows.text(0, 0), "stream version");
  }

  StreamState stream_state(const StreamId& stream) override {
    const std::string deleted_type(kStreamDeletedType);
    const std::array<const char*, 2> values{stream.value().c_str(), deleted_type.c_str()};
    const auto rows =
        run("state of stream \"" + stream.value() + "\"", false, sql::kStreamStateName, values);
    StreamState state;
    if (rows.empty()) return state;
    const auto number = [&](int column, const char* what) -> std::optional<std::int64_t> {
      if (rows.is_null(0, column)) return std::nullopt;
      return parse_int<std::int64_t>(rows.text(0, column), what);
    };
    state.version = number(0, "stream version");
    state.deleted = std::string_view(rows.text(0, 1)) == "t";
    state.metadata.max_count = number(2, "max_count");
    if (const auto seconds = number(3, "max_age_seconds")) {
      state.metadata.max_age = std::chrono::seconds(*seconds);
    }
    state.metadata.truncate_before = number(4, "truncate_before");
    return state;
  }

  void set_stream_metadata(const StreamId& stream, const StreamMetadata& metadata) override {
    metadata.validate();
    const std::string what = "set metadata of stream \"" + stream.value() + "\"";
    if (metadata.empty()) {
      const std::array<const char*, 1> values{stream.value().c_str()};
      (void)run(what, true, sql::kClearStreamMetadataName, values);
      return;
    }
    const auto text = [](const auto& value) -> std::optional<std::string> {
      if (!value) return std::nullopt;
      if constexpr (std::is_same_v<std::decay_t<decltype(*value)>, std::chrono::seconds>) {
        return std::to_string(value->count());
      } else {
        return std::to_string(*value);
      }
    };
    const auto max_count = text(metadata.max_count);
    const auto max_age = text(metadata.max_age);
    const auto truncate_before = text(metadata.truncate_before);
    const std::array<const char*, 4> values{
        stream.value().c_str(), max_count ? max_count->c_str() : nullptr,
        max_age ? max_age->c_str() : nullptr, truncate_before ? truncate_before->c_str() : nullptr};
    (void)run(what, true, sql::kSetStreamMetadataName, values);
  }

  Position head_position() override {
    const auto rows = run("head position", false, sql::kHeadPositionName, {}, read_pool());
    if (rows.empty()) return Position::start();
    return Position(parse_int<std::uint64_t>(rows.text(0, 0), "transaction id"),
                    parse_int<std::int64_t>(rows.text(0, 1), "global position"));
  }

  std::unique_ptr<ChangeSignal> watch() override {
    return detail::make_change_signal(options_.session_connection_string,
                                      options_.horizon_warning_after, store_backoff(), call_bound(),
                                      standby_wait());
  }

  std::unique_ptr<Subscription> subscribe(SubscriptionOptions options,
                                          EventHandler handler) override {
    if (!options.metrics) options.metrics = metrics_.sink();
    // The LISTEN connection reconnects at the pace the subscription's reads do (the options
    // are validated by make_catch_up_subscription, before the signal is ever waited on).
    auto signal = detail::make_change_signal(
        options_.session_connection_string, options_.horizon_warning_after,
        {.initial = options.initial_reconnect_backoff, .max = options.max_reconnect_backoff},
        call_bound(), standby_wait());
    return annals::detail::make_catch_up_subscription(*this, std::move(signal), std::move(options),
                                                      std::move(handler));
  }

  // Polls the read side's settled horizon until it is above the position's transaction: from
  // then on read_all returns the position's event (a committed transaction below the horizon
  // is visible; on a standby, below its snapshot's xmin means its commit was replayed).
  void wait_for_position(const Position& position, std::chrono::milliseconds timeout) {
    if (timeout.count() < 0) {
      throw InvalidArgumentError("wait_for_position: timeout must not be negative (got " +
                                 std::to_string(timeout.count()) + " ms)");
    }
    using Clock = std::chrono::steady_clock;
    const auto started = Clock::now();
    const auto deadline = started + timeout;
    const std::string commit = std::to_string(position.commit());
    const std::array<const char*, 1> values{commit.c_str()};
    auto pause = std::chrono::microseconds(200);
    for (;;) {
      const auto rows = run("wait for position " + position.to_string(), false,
                            sql::kPositionVisibleName, values, read_pool());
      if (!rows.empty() && rows.text(0, 0) == "t") return;
      const auto now = Clock::now();
      if (now >= deadline) {
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - started);
        throw PositionNotVisibleError(
            position, waited,
            "position " + position.to_string() + " is not visible to this store's reads after " +
                std::to_string(waited.count()) + " ms" +
                (standby_pool_ ? " (the standby has not replayed it yet)"
                               : " (an older transaction is still open)"));
      }
      // No notification tells when a standby replayed a commit: poll, soon at first.
      std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::microseconds(10'000));
    }
  }

  // On the primary: a position a command returned is committed there first.
  bool log_reaches(const Position& position) {
    const std::string commit = std::to_string(position.commit());
    const std::string sequence = std::to_string(position.sequence());
    const std::array<const char*, 2> values{commit.c_str(), sequence.c_str()};
    const auto rows =
        run("log reaches " + position.to_string(), false, sql::kLogReachesName, values);
    return !rows.empty() && rows.text(0, 0) == "t";
  }

 private:
  using Rows = detail::LibpqConnection::Result;

  // The store's retry rules for detail::run_pooled: a broken connection is retried as the
  // options say, a transient failure up to 8 times, all within the call timeout.
  [[nodiscard]] detail::RetryPolicy retry_policy() noexcept {
    return {.max_broken_retries = options_.max_retries_on_broken_connection,
            .call_timeout = options_.call_timeout,
            .watchdog = watchdog_.get(),
            .metrics = metrics_.enabled() ? &metrics_ : nullptr,
            .retry_labels = kStoreLabels};
  }

  // The deadline of the store's connections outside the pool (notifier, LISTEN): the call
  // timeout, enforced by the store's watchdog, which a ChangeSignal shares.
  [[nodiscard]] detail::CallBound call_bound() const {
    return {.watchdog = watchdog_, .timeout = options_.call_timeout};
  }

  // The reconnect backoff of the notifier and of watch()'s LISTEN connections.
  [[nodiscard]] detail::ReconnectBackoff store_backoff() const noexcept {
    return {.initial = options_.initial_reconnect_backoff, .max = options_.max_reconnect_backoff};
  }

  // When a write starting now must be over.
  [[nodiscard]] std::chrono::steady_clock::time_point call_deadline() const {
    return std::chrono::steady_clock::now() + options_.call_timeout;
  }

  using Pool = detail::ConnectionPool<detail::LibpqConnection>;

  // Where reads of the log and of streams go: the standby when there is one.
  Pool& read_pool() noexcept { return standby_pool_ ? *standby_pool_ : pool_; }

  // What a ChangeSignal waits for after a notification when reads go to a standby.
  [[nodiscard]] detail::StandbyWait standby_wait() const {
    return {.connection_string = options_.standby_connection_string,
            .timeout = options_.standby_replay_timeout};
  }

  // Executes a prepared statement on a pooled connection (see detail::run_pooled), by default
  // on the primary's pool.
  Rows run(const std::string& what, bool write, const char* statement,
           std::span<const char* const> values) {
    return run(what, write, statement, values, pool_);
  }
  Rows run(const std::string& what, bool write, const char* statement,
           std::span<const char* const> values, Pool& pool) {
    return detail::run_pooled(pool, what, write, retry_policy(),
                              [&](detail::LibpqConnection& connection) {
                                return connection.exec_prepared(statement, values);
                              });
  }

  // Runs a read statement and decodes its rows as they arrive.
  // `reserve`: room for this many events up front (log pages are usually full; a stream's
  // length is unknown, so read_stream passes 0).
  std::vector<RecordedEvent> read_events(const std::string& what, const char* statement,
                                         std::span<const char* const> values, std::size_t reserve) {
    return detail::run_pooled(
        read_pool(), what, false, retry_policy(), [&](detail::LibpqConnection& connection) {
          std::vector<RecordedEvent> events;
          events.reserve(std::min<std::size_t>(reserve, 4096));
          connection.stream_prepared(
              statement, values,
              [&](EventRow row) {
                events.push_back(decode_event(row, events.empty() ? nullptr : &events.back()));
              },
              read_statement_timeout_.empty() ? nullptr : read_statement_timeout_.c_str(), true);
          return events;
        });
  }

  // One query of the global log: at most `count` settled events after `after`.
  std::vector<RecordedEvent> read_log(const Position& after, std::size_t count,
                                      const EventFilter& filter) {
    const std::string commit = std::to_string(after.commit());
    const std::string sequence = std::to_string(after.sequence());
    const std::string limit = std::to_string(clamp_count(count));
    if (!filter.category && filter.event_types.empty()) {
      const std::array<const char*, 3> values{commit.c_str(), sequence.c_str(), limit.c_str()};
      return read_events("read all", sql::kReadAllName, values, count);
    }
    std::optional<std::string> types;
    if (!filter.event_types.empty()) {
      ArrayLiteral literal;
      for (const auto& type : filter.event_types) literal.add_quoted(type);
      types = std::move(literal).finish();
    }
    const std::array<const char*, 5> values{commit.c_str(), sequence.c_str(), limit.c_str(),
                                            filter.category ? filter.category->c_str() : nullptr,
                                            types ? types->c_str() : nullptr};
    return read_events("read all", sql::kReadAllFilteredName, values, count);
  }

  // One call of annals.append_events for every stream of an append (or append_multi).
  // `wrote_out` (optional): set when events were written (not an exact re-send).
  // `reopen`: p_reopen as an array literal ("{t,f}"), or null when no stream is reopened.
  std::vector<AppendResult> append_encoded(const AppendTargets& streams,
                                           const EncodedAppends& encoded, detail::WriteState& state,
                                           bool* wrote_out = nullptr,
                                           const char* reopen = nullptr) {
    const std::string what = streams.size() == 1
                                 ? describe_append(*streams[0].first)
                                 : "append to " + std::to_string(streams.size()) + " streams";
    const auto arrays = append_arrays(streams, encoded);
    const bool notify_here = options_.notify_on_append && options_.notify_in_transaction;
    const auto binary = [](const std::string& bytes) {
      return detail::LibpqConnection::Param{
          .data = bytes.data(), .length = static_cast<int>(bytes.size()), .binary = true};
    };
    const std::array<detail::LibpqConnection::Param, 10> values{
        binary(arrays.streams),
        binary(arrays.expected),
        binary(arrays.counts),
        binary(arrays.ids),
        binary(arrays.types),
        binary(arrays.schema_versions),
        binary(arrays.data),
        binary(arrays.metadata),
        detail::LibpqConnection::Param{.data = notify_here ? "true" : "false"},
        detail::LibpqConnection::Param{.data = reopen}};
    const auto rows = detail::run_pooled(
        pool_, what, &state, retry_policy(), [&](detail::LibpqConnection& connection) {
          return connection.exec_prepared_params(sql::kAppendName, values);
        });

    std::vector<AppendResult> results;
    results.reserve(streams.size());
    bool wrote = false;
    for (int row = 0; row < rows.rows(); ++row) {
      results.push_back(append_row_result(rows, row, streams, encoded, what, wrote));
    }
    if (results.size() != streams.size()) {
      throw InternalError(what + ": append_events returned " + std::to_string(results.size()) +
                          " rows for " + std::to_string(streams.size()) + " streams");
    }
    if (wrote && notify_after_commit()) notifier_.notify();
    if (wrote_out != nullptr) *wrote_out = wrote;
    return results;
  }

  // One row of annals.append_events: the stream's result (`wrote` set when it was written, not
  // an exact re-send), or the refusal the row reports, thrown as its annals error.
  static AppendResult append_row_result(const Rows& rows, int row, const AppendTargets& streams,
                                        const EncodedAppends& encoded, const std::string& what,
                                        bool& wrote) {
    const auto index =
        static_cast<std::size_t>(parse_int<int>(rows.text(row, 0), "stream index") - 1);
    const auto outcome = AppendOutcome{parse_int<int>(rows.text(row, 1), "outcome")};
    const StreamId& stream = *streams.at(index).first;
    const auto actual = rows.is_null(row, 6)
                            ? std::optional<std::int64_t>()
                            : parse_int<std::int64_t>(rows.text(row, 6), "actual version");
    if (outcome == AppendOutcome::kVersionMismatch) {
      throw ConcurrencyError(stream, streams[index].second, actual);
    }
    if (outcome == AppendOutcome::kStreamDeleted) {
      if (!actual) throw InternalError(what + ": append_events returned an invalid outcome 5 row");
      throw StreamDeletedError(stream, *actual);
    }
    if (outcome == AppendOutcome::kIdsElsewhere) {
      throw IdempotencyError(what + ": event ids of stream \"" + stream.value() +
                             "\" are already stored, but not as this exact append "
                             "(partial overlap, or used in another stream); nothing written");
    }
    if (outcome == AppendOutcome::kChangedResend) {
      // The first event whose content differs: its stored version, its place among this
      // stream's events and the parts that differ (sql/0009_refuse_changed_resend.sql).
      const auto ordinal = parse_int<std::size_t>(rows.text(row, 3), "event ordinal");
      const auto& events = encoded.at(index);
      if (ordinal < 1 || ordinal > events.size() || !actual) {
        throw InternalError(what + ": append_events returned an invalid outcome 4 row");
      }
      annals::detail::throw_changed_resend(
          stream, parse_int<std::int64_t>(rows.text(row, 2), "stored version"),
          events[ordinal - 1].id, static_cast<unsigned>(*actual));
    }
    if (outcome == AppendOutcome::kExactResend) {
      logger()->debug("annals: {}: exact re-send; returning the original result", what);
    } else {
      wrote = true;
    }
    return AppendResult{
        .stream_id = stream,
        .first_version = parse_int<std::int64_t>(rows.text(row, 2), "first version"),
        .last_version = parse_int<std::int64_t>(rows.text(row, 3), "last version"),
        .position = Position(parse_int<std::uint64_t>(rows.text(row, 4), "transaction id"),
                             parse_int<std::int64_t>(rows.text(row, 5), "global position")),
    };
  }

  void check_database() {
    // On a connection of its own: the pool's connections prepare statements that need the
    // schema, and a missing schema must be reported as such.
    const auto ahead = detail::with_connection(
        options_.connection_string, "open store", [this](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          return detail::check_database(tx, &partitioned_log_);
        });
    if (!options_.standby_connection_string.empty()) {
      // The standby must hold the migrated schema (it is the same cluster's copy); its answer
      // about transaction ids is the primary's as of its replay, so a restore shows there too.
      (void)detail::with_connection(options_.standby_connection_string, "open store (standby)",
                                    [](pqxx::connection& connection) {
                                      pqxx::nontransaction tx(connection);
                                      return detail::check_database(tx);
                                    });
    }
    if (ahead) {
      throw CorruptionError(
          "stored transaction ids (up to " + std::to_string(ahead->stored) +
          ") are ahead of this server's next transaction id (" + std::to_string(ahead->next) +
          "): the database was probably restored into a new cluster. Readers of the global log "
          "would hold back or misorder events; refusing to open. Stop every service using the "
          "database and run `annals restore-check --fix` as the store's owner (docs/schema.md, "
          "\"Restoring a dump\").");
    }
  }

  bool notify_after_commit() const noexcept {
    return options_.notify_on_append && !options_.notify_in_transaction;
  }

  // One event, one stream: the single prepared statement of sql::kAppendOne, sent alone or
  // with other threads' single-event appends as one group (see GroupCommit). Returns empty when
  // it wrote nothing (re-send, conflict, overlap, a concurrent writer of the stream, or a group
  // that failed as a whole); the caller then asks annals.append_events for the authoritative
  // answer, in this thread.
  std::optional<AppendResult> append_one_grouped(const StreamId& stream,
                                                 const ExpectedVersion& expected,
                                                 const EncodedEvent& event,
                                                 detail::WriteState& state) {
    OneAppend request(stream, expected, event);
    request.state.deadline = state.deadline;
    if (options_.group_commit_max_appends <= 1) {
      metrics_.observe(HistogramId::kAppendGroupSize, kStoreLabels, 1);
      auto result = try_append_one(request);
      state = request.state;
      return result;
    }
    group_commit_.submit(
        request, [this](std::span<detail::GroupCommit::Member* const> group) { run_group(group); });
    state = request.state;
    if (request.error) std::rethrow_exception(request.error);
    return std::move(request.result);
  }

  // A single-event append waiting for, or carried by, a group.
  struct OneAppend : detail::GroupCommit::Member {
    OneAppend(const StreamId& stream_id, const ExpectedVersion& expected_version,
              const EncodedEvent& encoded)
        : stream(&stream_id),
          expected_text(std::to_string(expected_code(expected_version))),
          id(encoded.id.to_string()),
          schema_version(std::to_string(encoded.schema_version)),
          values{stream_id.value().c_str(), expected_text.c_str(),  id.c_str(),
                 encoded.type.c_str(),      schema_version.c_str(), encoded.data.c_str(),
                 encoded.metadata.c_str()} {
      bytes = encoded.data.size() + encoded.metadata.size();
    }
    OneAppend(const OneAppend&) = delete;
    OneAppend& operator=(const OneAppend&) = delete;
    ~OneAppend() = default;

    const StreamId* stream;
    std::string expected_text;
    std::string id;
    std::string schema_version;
    std::array<const char*, 7> values;
    std::optional<AppendResult> result;  // set when this append was written
    detail::WriteState state;            // in doubt when a statement carrying it may have committed
    std::exception_ptr error;            // set when it ran alone and failed
  };

  // Runs a group: alone, the ordinary single statement; otherwise every member's statement in
  // one pipelined transaction, in stream-id order (so two groups that touch the same streams
  // lock them in the same order and cannot deadlock). Each statement still checks its own
  // expected version and event id and writes nothing when they do not hold. If the server
  // refuses any statement (a concurrent writer won a version: 23505), the transaction is
  // rolled back and every member falls back on its own. Never throws: an append that ran alone
  // gets its error to rethrow; a member of a group that failed is simply not written, and its
  // own thread retries it alone.
  void run_group(std::span<detail::GroupCommit::Member* const> members) noexcept {
    metrics_.observe(HistogramId::kAppendGroupSize, kStoreLabels,
                     static_cast<double>(members.size()));
    std::vector<OneAppend*> group;
    group.reserve(members.size());
    for (auto* member : members) group.push_back(static_cast<OneAppend*>(member));
    std::stable_sort(group.begin(), group.end(), [](const OneAppend* a, const OneAppend* b) {
      return a->stream->value() < b->stream->value();
    });
    // The group's statements travel together: if they may have committed, every member may
    // have, and a member that falls back alone carries that doubt into its own attempts. The
    // group must be over by its earliest member's deadline.
    detail::WriteState state{.deadline = group.front()->state.deadline};
    for (const auto* append : group)
      state.deadline = std::min(state.deadline, append->state.deadline);
    try {
      std::vector<std::span<const char* const>> parameter_sets;
      parameter_sets.reserve(group.size());
      for (const auto* append : group) parameter_sets.emplace_back(append->values);
      const auto what = group.size() == 1
                            ? describe_append(*group.front()->stream)
                            : "append (a group of " + std::to_string(group.size()) + ")";
      const auto results = exec_append_one(parameter_sets, what, state);
      share_doubt(group, state);
      if (results.size() != group.size()) return;  // rolled back: every member falls back
      for (std::size_t i = 0; i < group.size(); ++i) {
        if (!results[i].empty()) group[i]->result = one_result(*group[i]->stream, results[i]);
      }
    } catch (const std::exception& e) {
      share_doubt(group, state);
      group_failed(group, e.what());
    } catch (...) {
      share_doubt(group, state);
      group_failed(group, "an unknown error");
    }
  }

  static void share_doubt(std::span<OneAppend* const> group, const detail::WriteState& state) {
    if (!state.in_doubt) return;
    for (auto* append : group) append->state.in_doubt = true;
  }

  // Called from run_group's handlers: a lone append gets the error to rethrow in its thread;
  // the members of a larger group are left unwritten and each retries alone.
  static void group_failed(std::span<OneAppend* const> group, const char* reason) {
    if (group.size() == 1) {
      group.front()->error = std::current_exception();
      return;
    }
    logger()->debug("annals: a group of {} appends failed ({}); each is retried alone",
                    group.size(), reason);
  }

  // One event, one stream, alone (group commit off): the single prepared statement of
  // sql::kAppendOne. Returns empty when it wrote nothing (re-send, conflict, overlap, or a
  // concurrent writer of the stream); the caller then asks annals.append_events.
  std::optional<AppendResult> try_append_one(OneAppend& request) {
    const std::array<std::span<const char* const>, 1> parameter_sets{request.values};
    const auto results =
        exec_append_one(parameter_sets, describe_append(*request.stream), request.state);
    if (results.empty() || results.front().empty()) return std::nullopt;
    return one_result(*request.stream, results.front());
  }

  // Runs sql::kAppendOne once per parameter set on a pooled connection: one set as a plain
  // statement, several pipelined in one transaction. Returns one result per set (empty where
  // that append wrote nothing), or no results at all when a concurrent writer won a version
  // (23505) and the transaction wrote nothing.
  std::vector<Rows> exec_append_one(std::span<const std::span<const char* const>> parameter_sets,
                                    const std::string& what, detail::WriteState& state) {
    return detail::run_pooled(
        pool_, what, &state, retry_policy(), [&](detail::LibpqConnection& connection) {
          try {
            if (parameter_sets.size() > 1) {
              return connection.exec_prepared_pipelined(sql::kAppendOneName, parameter_sets);
            }
            std::vector<Rows> results;
            results.push_back(connection.exec_prepared(sql::kAppendOneName, parameter_sets[0]));
            return results;
          } catch (const detail::DbError& e) {
            if (e.sqlstate() == detail::sqlstate::kUniqueViolation) return std::vector<Rows>();
            throw;
          }
        });
  }

  static AppendResult one_result(const StreamId& stream, const Rows& rows) {
    const auto version = parse_int<std::int64_t>(rows.text(0, 2), "stream version");
    return AppendResult{
        .stream_id = stream,
        .first_version = version,
        .last_version = version,
        .position = Position(parse_int<std::uint64_t>(rows.text(0, 0), "transaction id"),
                             parse_int<std::int64_t>(rows.text(0, 1), "global position"))};
  }

  PostgresEventStoreOptions options_;
  // Whether the log is partitioned with stream heads (sql/0019), found at open: the pools'
  // connections then prepare the partitioned append statements. Set before any opens.
  bool partitioned_log_ = false;
  std::string read_statement_timeout_;  // milliseconds as text; empty: none
  // Shared with the ChangeSignals (watch() may outlive the store); destroyed after the
  // notifier, whose calls it bounds.
  std::shared_ptr<detail::Watchdog> watchdog_;
  Pool pool_;
  std::unique_ptr<Pool> standby_pool_;  // null without a standby
  detail::GroupCommit group_commit_;
  detail::AfterCommitNotifier notifier_;
  annals::detail::MetricsRecorder metrics_;
};

}  // namespace

std::unique_ptr<EventStore> make_postgres_event_store(PostgresEventStoreOptions options) {
  validate_timeouts(options);
  return std::make_unique<PostgresEventStore>(std::move(options));
}

void wait_for_position(EventStore& store, const Position& position,
                       std::chrono::milliseconds timeout) {
  auto* postgres = dynamic_cast<PostgresEventStore*>(&store);
  if (postgres == nullptr) {
    throw InvalidArgumentError(
        "wait_for_position: the store was not made by make_postgres_event_store");
  }
  postgres->wait_for_position(position, timeout);
}

bool log_reaches(EventStore& store, const Position& position) {
  auto* postgres = dynamic_cast<PostgresEventStore*>(&store);
  if (postgres == nullptr) {
    throw InvalidArgumentError("log_reaches: the store was not made by make_postgres_event_store");
  }
  return postgres->log_reaches(position);
}

std::size_t detail::appends_waiting_for_group_for_testing(EventStore& store) {
  return dynamic_cast<PostgresEventStore&>(store).appends_waiting_for_group();
}

}  // namespace annals::postgres
