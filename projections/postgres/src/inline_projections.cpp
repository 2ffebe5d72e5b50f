// Inline projections: an append and the writes of its inline read-model projections in one
// transaction (issue 15; sql/0016; docs/read-models.md, "Inline projections").
//
// One transaction on a pooled session of the projection store's kind:
//   1. annals.append_events (the event store's function: every check in the database). An exact
//      re-send stops here: its events were applied with the original append, which committed.
//   2. Per projection, its advisory lock, shared: a reset (rebuild) holds it exclusively, so
//      what follows never sees a reset that has not committed yet.
//   3. Whether the projection is caught up on the appended streams: the last earlier event of
//      each that it handles is behind its checkpoint or in a transaction it applied inline (what
//      a projection applied of a stream is always a prefix of it, so that event's predecessors
//      are applied too). The append locked those streams, so every earlier event of them has
//      committed and this statement, sent after it, sees them all. Not caught up (the runner lags
//      behind those streams, or replays them in a rebuild): the events are left to the runner,
//      which applies them in log order after the earlier ones. Per stream, events are thus applied
//      in version order whichever way they are applied; across streams, in commit order, which the
//      asynchronous kind does not promise either.
//   4. The appended events read back as a reader of the log gets them, and applied through the
//      projection's own apply() (the runner's code path), writes pipelined.
//   5. The transaction id appended to the projection's inline_applied list, then COMMIT.
// The checkpoint is never written here: only a runner moves it, in log order below the oldest
// running transaction (ARCHITECTURE decision 5), so inline appends that commit out of position
// order cannot make it pass an event that is not visible yet. The runner skips the events of
// listed transactions and drops the entries its checkpoint passes (projection_batch.cpp).
//
// Retries: the whole transaction is repeated on a new connection after a broken connection, and
// after a transient failure (deadlock, a raced unique key), with the same event ids, so a repeat
// of an append that did commit is an exact re-send and applies nothing twice.
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/detail/encoded_event.hpp"
#include "annals/eventstore/detail/stored_event.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/projections/postgres/inline_projections.hpp"
#include "append_codes.hpp"
#include "array_literal.hpp"
#include "connection_string.hpp"
#include "parse_int.hpp"
#include "pooled_call.hpp"
#include "postgres_batch.hpp"
#include "sql.hpp"
#include "watchdog.hpp"
#include "write_pipeline.hpp"

namespace annals::projections {
namespace {

using annals::detail::EncodedEvent;
using detail::logger;
using detail::Param;
using detail::PostgresContext;
using detail::Session;
using detail::SessionPool;
using postgres::detail::AppendOutcome;
using postgres::detail::ArrayLiteral;
using postgres::detail::expected_code;
using postgres::detail::parse_int;

struct StreamEvents {
  const StreamId* stream;
  ExpectedVersion expected;
  std::vector<EncodedEvent> events;
  bool reopen = false;  // StreamAppend::reopen: append to a deleted stream
};

// The parameters of sql::kInlineAppend, in its order ($1 the streams), as the pipeline sends
// them: built once per append, sent by every attempt without another copy.
struct AppendParameters {
  std::vector<Param> values;
  [[nodiscard]] const Param& streams() const { return values.front(); }
};

AppendParameters append_parameters(const std::vector<StreamEvents>& appends) {
  ArrayLiteral streams, expected, counts, ids, types, schema_versions, data, metadata, reopen;
  for (const auto& append : appends) {
    streams.add_quoted(append.stream->value());
    reopen.add_plain(append.reopen ? "t" : "f");
    expected.add_number(expected_code(append.expected));
    counts.add_number(static_cast<std::int64_t>(append.events.size()));
    for (const auto& event : append.events) {
      ids.add_plain(event.id.to_string());
      types.add_quoted(event.type);
      schema_versions.add_number(event.schema_version);
      data.add_quoted(event.data);
      metadata.add_quoted(event.metadata);
    }
  }
  AppendParameters parameters;
  parameters.values.reserve(9);
  for (auto* literal :
       {&streams, &expected, &counts, &ids, &types, &schema_versions, &data, &metadata, &reopen}) {
    parameters.values.push_back(Param{std::move(*literal).finish(), false});
  }
  return parameters;
}

// One row of annals.append_events (row `r` of the append's result): the stream's result, or
// its refusal thrown as the annals error the event store throws for it. `wrote` is set when the
// stream was written (not an exact re-send).
AppendResult row_result(const detail::PipelineRows& rows, int r,
                        const std::vector<StreamEvents>& appends, const std::string& what,
                        bool& wrote) {
  const auto index = parse_int<std::size_t>(rows.text(r, 0), "stream index") - 1;
  const auto& append = appends.at(index);
  const StreamId& stream = *append.stream;
  const auto outcome = AppendOutcome{parse_int<int>(rows.text(r, 1), "outcome")};
  const auto actual =
      rows.is_null(r, 6)
          ? std::optional<std::int64_t>()
          : std::optional<std::int64_t>(parse_int<std::int64_t>(rows.text(r, 6), "actual"));
  switch (outcome) {
    case AppendOutcome::kVersionMismatch:
      throw ConcurrencyError(stream, append.expected, actual);
    case AppendOutcome::kStreamDeleted:
      if (!actual) throw InternalError(what + ": append_events returned an invalid outcome 5 row");
      throw StreamDeletedError(stream, *actual);
    case AppendOutcome::kIdsElsewhere:
      throw IdempotencyError(what + ": event ids of stream \"" + stream.value() +
                             "\" are already stored, but not as this exact append "
                             "(partial overlap, or used in another stream); nothing written");
    case AppendOutcome::kChangedResend: {
      const auto ordinal = parse_int<std::size_t>(rows.text(r, 3), "event ordinal");
      if (ordinal < 1 || ordinal > append.events.size() || !actual) {
        throw InternalError(what + ": append_events returned an invalid outcome 4 row");
      }
      annals::detail::throw_changed_resend(
          stream, parse_int<std::int64_t>(rows.text(r, 2), "stored version"),
          append.events[ordinal - 1].id, static_cast<unsigned>(*actual));
    }
    case AppendOutcome::kWritten:
      wrote = true;
      break;
    case AppendOutcome::kExactResend:
      break;
  }
  return AppendResult{
      .stream_id = stream,
      .first_version = parse_int<std::int64_t>(rows.text(r, 2), "first version"),
      .last_version = parse_int<std::int64_t>(rows.text(r, 3), "last version"),
      .position = Position(parse_int<std::uint64_t>(rows.text(r, 4), "transaction id"),
                           parse_int<std::int64_t>(rows.text(r, 5), "global position")),
  };
}

// Row `r` of sql::kInlineReadBack as the event a reader of the log gets.
RecordedEvent decode_row(const detail::PipelineRows& rows, int r) {
  return annals::detail::decode_stored_event({
      .stream_id = rows.text(r, 2),
      .version = parse_int<std::int64_t>(rows.text(r, 3), "stream version"),
      .position = Position(parse_int<std::uint64_t>(rows.text(r, 0), "transaction id"),
                           parse_int<std::int64_t>(rows.text(r, 1), "global position")),
      .id = EventId::parse(rows.text(r, 4)),
      .type = rows.text(r, 5),
      .schema_version = parse_int<std::int32_t>(rows.text(r, 6), "schema version"),
      .data = rows.text(r, 7),
      .metadata = rows.text(r, 8),
      .recorded_at = std::chrono::system_clock::time_point(
          std::chrono::microseconds(parse_int<std::int64_t>(rows.text(r, 9), "recorded time"))),
  });
}

// The unit of work an inline projection writes through: the append's transaction. Its writes
// are queued, behind the statement that enters the projection's read schema, and sent with the
// record of the transaction (and the NOTIFY, for the last projection) in one round trip.
class InlineWork final : public UnitOfWork, public PostgresContext {
 public:
  InlineWork(const std::string& projection, Session& session, pqxx::work& tx)
      : projection_(projection), session_(session), tx_(tx) {
    set_pipelined_flag(true);
    queue(sql::kInlineEnterName, {Param{projection_, false}});
  }

  const std::string& projection_name() const noexcept override { return projection_; }
  Session& session() noexcept override { return session_; }
  pqxx::dbtransaction& transaction() noexcept override { return tx_; }

  // Sends the queued writes, the record that `transaction` was applied inline and, with
  // `notify`, the NOTIFY that wakes runners at commit: one round trip.
  void finish(const std::string& transaction, bool notify) {
    queue(sql::kInlineRecordName, {Param{projection_, false}, Param{transaction, false}});
    if (notify) queue(sql::kInlineNotifyName, {});
    flush_writes();
  }

 private:
  void queue(const char* statement, const std::vector<Param>& params) {
    try {
      tx_.conn().prepare_now(statement);
    } catch (const std::exception& e) {
      fail(e, "projection \"" + projection_ + "\": prepare " + statement, false);
    }
    pending_writes().add(statement, params);
  }

  const std::string& projection_;
  Session& session_;
  pqxx::work& tx_;
};

// A projection as this store applies it: its name and filter, computed once.
struct InlineProjection {
  std::shared_ptr<ReadModelProjection> projection;
  std::string name;
  EventFilter filter;
  Param category;  // NULL: any
  Param types;     // the filter's types as an array literal; NULL: any
};

std::string describe(const std::string& projection) { return "projection \"" + projection + "\""; }

class InlineProjectionsStore final : public EventStore {
 public:
  InlineProjectionsStore(EventStore& events, std::vector<InlineProjection> projections,
                         InlineProjectionsOptions options)
      : events_(events),
        projections_(std::move(projections)),
        options_(std::move(options)),
        watchdog_(options_.call_timeout),
        pool_(postgres::detail::with_timeouts(options_.connection_string,
                                              options_.connection_timeouts),
              options_.pool_size, nullptr, options_.acquire_timeout) {}

  AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                      std::vector<NewEvent> events) override {
    std::vector<StreamEvents> appends;
    appends.push_back(
        StreamEvents{&stream, expected,
                     annals::detail::encode_events(stream, std::move(events), options_.limits)});
    return std::move(append_inline(appends, "append to stream \"" + stream.value() + "\"").front());
  }

  std::vector<AppendResult> append_multi(std::vector<StreamAppend> appends) override {
    annals::detail::validate_multi_append(appends, options_.limits);
    std::vector<StreamEvents> encoded;
    encoded.reserve(appends.size());
    for (auto& append : appends) {
      encoded.push_back(
          StreamEvents{&append.stream_id, append.expected,
                       annals::detail::encode_events(append.stream_id, std::move(append.events),
                                                     options_.limits),
                       append.reopen});
    }
    return append_inline(encoded, "append to " + std::to_string(encoded.size()) + " streams");
  }

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    return events_.read_stream(stream, options);
  }
  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    return events_.read_all(options);
  }
  void set_stream_metadata(const StreamId& stream, const StreamMetadata& metadata) override {
    events_.set_stream_metadata(stream, metadata);
  }
  StreamState stream_state(const StreamId& stream) override { return events_.stream_state(stream); }
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    return events_.stream_version(stream);
  }
  Position head_position() override { return events_.head_position(); }
  std::unique_ptr<ChangeSignal> watch() override { return events_.watch(); }
  std::unique_ptr<Subscription> subscribe(SubscriptionOptions options,
                                          EventHandler handler) override {
    return events_.subscribe(std::move(options), std::move(handler));
  }

 private:
  std::vector<AppendResult> append_inline(const std::vector<StreamEvents>& appends,
                                          const std::string& what) {
    const auto parameters = append_parameters(appends);
    postgres::detail::WriteState state;
    std::exception_ptr handler_error;
    bool wrote = false;
    auto results = postgres::detail::run_pooled(
        pool_, what, &state, retry_policy(), [&](SessionPool::Lease& session) {
          handler_error = nullptr;
          bool broken = false;
          auto written =
              run_transaction(session, appends, parameters, what, wrote, handler_error, broken);
          // Discarded only now that the transaction on it is gone.
          if (broken) session.discard();
          return written;
        });
    if (handler_error) std::rethrow_exception(handler_error);
    return results;
  }

  std::vector<AppendResult> run_transaction(SessionPool::Lease& session,
                                            const std::vector<StreamEvents>& appends,
                                            const AppendParameters& p, const std::string& what,
                                            bool& wrote, std::exception_ptr& handler_error,
                                            bool& broken) {
    pqxx::work tx(session->connection);
    const auto rows = send_append(tx, p);
    std::vector<AppendResult> results;
    results.reserve(appends.size());
    wrote = false;
    const auto& appended = rows.front();
    for (int r = 0; r < appended.size(); ++r) {
      results.push_back(row_result(appended, r, appends, what, wrote));
    }
    if (results.size() != appends.size()) {
      throw InternalError(what + ": append_events returned " + std::to_string(results.size()) +
                          " rows for " + std::to_string(appends.size()) + " streams");
    }
    // An exact re-send wrote nothing; its events were applied with the original append.
    if (!wrote) return results;
    const std::string transaction = std::to_string(results.front().position.commit());
    std::vector<const InlineProjection*> applying;
    for (std::size_t i = 0; i < projections_.size(); ++i) {
      const auto& caught_up = rows[2 + 2 * i];
      const auto& name = projections_[i].name;
      if (caught_up.size() == 0) {
        throw NotFoundError(describe(name) + " is not registered any more; nothing written");
      }
      if (caught_up.text(0, 0) != "t") {
        logger()->debug("annals: {}: behind the appended streams; leaving {} to its runner",
                        describe(name), what);
        continue;
      }
      applying.push_back(&projections_[i]);
    }
    std::vector<RecordedEvent> events;
    const auto& read_back = rows.back();
    events.reserve(static_cast<std::size_t>(read_back.size()));
    for (int r = 0; r < read_back.size(); ++r) events.push_back(decode_row(read_back, r));
    const bool notify = options_.notify_on_append;
    for (std::size_t k = 0; k < applying.size(); ++k) {
      const bool last = k + 1 == applying.size();
      if (!apply(*applying[k], events, transaction, notify && last, *session, tx, handler_error,
                 broken)) {
        return {};
      }
    }
    if (applying.empty() && notify) tx.exec_prepared(sql::kInlineNotifyName);
    tx.commit();
    return results;
  }

  // The first round trip of an inline append: the append, then per projection its shared lock
  // and caught-up check, then the read-back of the appended events. Returns each statement's
  // rows in that order (the append's first, the read-back's last). Each statement runs after
  // the one before it has finished (a snapshot of its own), so every caught-up check sees the
  // projection as it is once its lock is held.
  std::vector<detail::PipelineRows> send_append(pqxx::work& tx, const AppendParameters& p) {
    auto& connection = tx.conn();
    for (const char* statement : {sql::kInlineAppendName, sql::kInlineLockSharedName,
                                  sql::kInlineCaughtUpName, sql::kInlineReadBackName}) {
      connection.prepare_now(statement);
    }
    detail::WritePipeline pipeline;
    pipeline.add(sql::kInlineAppendName, p.values);
    for (const auto& projection : projections_) {
      const std::vector<Param> lock = {Param{projection.name, false}};
      pipeline.add(sql::kInlineLockSharedName, lock);
      const std::vector<Param> check = {Param{projection.name, false}, p.streams(),
                                        projection.category, projection.types};
      pipeline.add(sql::kInlineCaughtUpName, check);
    }
    pipeline.add(sql::kInlineReadBackName, {});
    auto rows = pipeline.send_collect(tx);
    if (rows.size() != 2 + 2 * projections_.size()) {
      throw InternalError("inline append: " + std::to_string(rows.size()) +
                          " results for the first round trip, expected " +
                          std::to_string(2 + 2 * projections_.size()));
    }
    return rows;
  }

  // Applies `events` (those the projection handles) through the projection's apply(), in the
  // append's transaction, and records `transaction` as applied inline. A failure (the
  // handler's or its writes') is kept in `handler_error` and returns false; the transaction
  // then rolls back (`broken`: on a connection to discard).
  static bool apply(const InlineProjection& inline_projection,
                    const std::vector<RecordedEvent>& events, const std::string& transaction,
                    bool notify, Session& session, pqxx::work& tx,
                    std::exception_ptr& handler_error, bool& broken) {
    InlineWork work(inline_projection.name, session, tx);
    try {
      for (const auto& event : events) {
        if (inline_projection.filter.matches(event))
          inline_projection.projection->apply(event, work);
      }
      work.finish(transaction, notify);
      return true;
    } catch (...) {
      broken = work.broken();
      handler_error = std::current_exception();
      return false;
    }
  }

  [[nodiscard]] postgres::detail::RetryPolicy retry_policy() noexcept {
    return postgres::detail::RetryPolicy{
        .max_broken_retries = 2,
        .max_transient_retries = 8,
        .one_count = false,
        .component = {},
        .call_timeout = options_.call_timeout,
        .watchdog = &watchdog_,
    };
  }

  EventStore& events_;
  std::vector<InlineProjection> projections_;
  InlineProjectionsOptions options_;
  postgres::detail::Watchdog watchdog_;
  SessionPool pool_;
};

}  // namespace

std::unique_ptr<EventStore> make_inline_projections_store(
    EventStore& events, ProjectionStore& projection_store,
    std::vector<std::shared_ptr<ReadModelProjection>> projections,
    InlineProjectionsOptions options) {
  constexpr std::string_view kOwner = "InlineProjectionsOptions";
  if (options.connection_string.empty()) {
    throw InvalidArgumentError(std::string(kOwner) + "::connection_string is empty");
  }
  if (options.pool_size == 0) {
    throw InvalidArgumentError(std::string(kOwner) + "::pool_size must be at least 1");
  }
  postgres::detail::validate_timeouts(options.connection_timeouts, kOwner);
  postgres::detail::validate_duration(options.acquire_timeout, kOwner, "acquire_timeout", false);
  postgres::detail::validate_duration(options.call_timeout, kOwner, "call_timeout", false);
  if (projections.empty()) {
    throw InvalidArgumentError("make_inline_projections_store: no projection given");
  }
  std::vector<InlineProjection> prepared;
  std::set<std::string> names;
  for (auto& projection : projections) {
    if (!projection) throw InvalidArgumentError("make_inline_projections_store: null projection");
    auto name = projection->name();
    validate_projection_name(name);
    if (!names.insert(name).second) {
      throw InvalidArgumentError("make_inline_projections_store: " + describe(name) +
                                 " is given twice");
    }
    projection_store.prepare(*projection);
    auto filter = projection->filter();
    Param category{{}, true};
    if (filter.category) category = Param{*filter.category, false};
    Param types{{}, true};
    if (!filter.event_types.empty()) {
      ArrayLiteral literal;
      for (const auto& type : filter.event_types) literal.add_quoted(type);
      types = Param{std::move(literal).finish(), false};
    }
    prepared.push_back(InlineProjection{.projection = std::move(projection),
                                        .name = std::move(name),
                                        .filter = std::move(filter),
                                        .category = std::move(category),
                                        .types = std::move(types)});
  }
  return std::make_unique<InlineProjectionsStore>(events, std::move(prepared), std::move(options));
}

}  // namespace annals::projections
