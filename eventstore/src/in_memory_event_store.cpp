// The in-memory EventStore. It mirrors annals.append_events (sql/0001_create_event_store.sql)
// step by step so that both stores pass one contract suite (ARCHITECTURE decision 1):
// validation by the shared encoder, then idempotency, then expected versions, then one
// all-or-nothing write that forms one "commit" in the global log.
#include "annals/eventstore/in_memory_event_store.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "annals/eventstore/detail/catch_up_subscription.hpp"
#include "annals/eventstore/detail/encoded_event.hpp"
#include "annals/eventstore/detail/metrics_recorder.hpp"
#include "annals/eventstore/error.hpp"

namespace annals {
namespace {

struct EventIdHash {
  std::size_t operator()(const EventId& id) const noexcept {
    return boost::uuids::hash_value(id.uuid());
  }
};

// Wakes subscriptions after appends: a generation counter bumped on every successful append.
struct AppendNotifier {
  std::mutex mutex;
  std::condition_variable appended;
  std::uint64_t generation = 0;  // guarded by mutex

  void notify() {
    {
      std::lock_guard lock(mutex);
      ++generation;
    }
    appended.notify_all();
  }
};

class InMemoryChangeSignal final : public ChangeSignal {
 public:
  explicit InMemoryChangeSignal(std::shared_ptr<AppendNotifier> notifier)
      : notifier_(std::move(notifier)) {}

  std::uint64_t observe() override {
    std::lock_guard lock(notifier_->mutex);
    return notifier_->generation;
  }

  bool wait(std::uint64_t token, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(notifier_->mutex);
    notifier_->appended.wait_for(lock, timeout,
                                 [&] { return notifier_->generation != token || interrupted_; });
    interrupted_ = false;
    return notifier_->generation != token;
  }

  void interrupt() override {
    {
      std::lock_guard lock(notifier_->mutex);
      interrupted_ = true;
    }
    notifier_->appended.notify_all();
  }

 private:
  std::shared_ptr<AppendNotifier> notifier_;
  bool interrupted_ = false;  // guarded by notifier_->mutex
};

// One stream's part of an append, validated, serialized and parsed back.
struct PendingAppend {
  StreamId stream;
  ExpectedVersion expected;
  bool reopen = false;  // StreamAppend::reopen
  std::vector<detail::EncodedEvent> events;
  // Parsed from the encoded text, so that reads return what a JSON round trip yields, exactly
  // like the PostgreSQL store (which parses what jsonb returns).
  std::vector<nlohmann::json> data;
  std::vector<nlohmann::json> metadata;
};

PendingAppend prepare(StreamId stream, ExpectedVersion expected, bool reopen,
                      std::vector<detail::EncodedEvent> events) {
  PendingAppend pending{std::move(stream), expected, reopen, std::move(events), {}, {}};
  pending.data.reserve(pending.events.size());
  pending.metadata.reserve(pending.events.size());
  for (const auto& event : pending.events) {
    pending.data.push_back(nlohmann::json::parse(event.data));
    pending.metadata.push_back(nlohmann::json::parse(event.metadata));
  }
  return pending;
}

// The log: every event in global order, plus indexes by stream and by id. It is the reader
// of subscriptions, which share it (through shared_ptr) so that a subscription may outlive
// the store object.
class InMemoryLog final : public EventReader {
 public:
  InMemoryLog() : notifier_(std::make_shared<AppendNotifier>()) {}

  const std::shared_ptr<AppendNotifier>& notifier() const { return notifier_; }

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    std::vector<RecordedEvent> out;
    std::lock_guard lock(mutex_);
    const auto found = streams_.find(stream.value());
    if (found == streams_.end() || options.max_count == 0) return out;
    const std::vector<std::size_t>& indexes = found->second;
    const auto last = static_cast<StreamVersion>(indexes.size());
    // The stream's retention rules, as the PostgreSQL read applies them (sql.hpp): the oldest
    // version kept, and the oldest recorded time kept.
    StreamVersion oldest = 1;
    std::optional<std::chrono::system_clock::time_point> since;
    if (const auto rules = metadata_.find(stream.value()); rules != metadata_.end()) {
      const StreamMetadata& metadata = rules->second;
      if (metadata.truncate_before) oldest = std::max(oldest, *metadata.truncate_before);
      if (metadata.max_count) oldest = std::max(oldest, last - *metadata.max_count + 1);
      if (metadata.max_age) since = std::chrono::system_clock::now() - *metadata.max_age;
    }
    const auto keep = [&](StreamVersion v) {
      const RecordedEvent& event = log_[indexes[static_cast<std::size_t>(v - 1)]];
      if (!since || event.recorded_at >= *since) out.push_back(event);
    };
    if (options.direction == ReadDirection::kForward) {
      for (StreamVersion v = std::max<StreamVersion>(options.from.value_or(1), oldest);
           v <= last && out.size() < options.max_count; ++v) {
        keep(v);
      }
    } else {
      for (StreamVersion v = std::min(options.from.value_or(last), last);
           v >= oldest && out.size() < options.max_count; --v) {
        keep(v);
      }
    }
    return out;
  }

  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    std::vector<RecordedEvent> out;
    std::lock_guard lock(mutex_);
    auto it = std::upper_bound(
        log_.begin(), log_.end(), options.after,
        [](const Position& after, const RecordedEvent& event) { return after < event.position; });
    for (; it != log_.end() && out.size() < options.max_count; ++it) {
      if (options.filter.matches(*it)) out.push_back(*it);
    }
    return out;
  }

  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    std::lock_guard lock(mutex_);
    return version_locked(stream);
  }

  Position head_position() override {
    std::lock_guard lock(mutex_);
    return log_.empty() ? Position::start() : log_.back().position;
  }

  StreamState stream_state(const StreamId& stream) override {
    std::lock_guard lock(mutex_);
    StreamState state;
    state.version = version_locked(stream);
    state.deleted = deleted_locked(stream);
    if (const auto found = metadata_.find(stream.value()); found != metadata_.end()) {
      state.metadata = found->second;
    }
    return state;
  }

  void set_stream_metadata(const StreamId& stream, const StreamMetadata& metadata) {
    metadata.validate();
    std::lock_guard lock(mutex_);
    if (metadata.empty()) {
      metadata_.erase(stream.value());
    } else {
      metadata_.insert_or_assign(stream.value(), metadata);
    }
  }

  // The body of annals.append_events: same checks in the same order, same outcomes.
  // `resent`: set when the append was an exact re-send (nothing written).
  std::vector<AppendResult> append(std::vector<PendingAppend>& appends, bool& resent) {
    std::vector<AppendResult> results;
    {
      std::lock_guard lock(mutex_);
      if (auto original = find_exact_resend_locked(appends)) {
        resent = true;
        return *std::move(original);
      }
      for (const PendingAppend& append : appends) {
        const auto actual = version_locked(append.stream);
        // A deleted stream refuses appends before its version is looked at, as in
        // annals.append_events (sql/0014_stream_lifecycle.sql).
        if (!append.reopen && deleted_locked(append.stream)) {
          throw StreamDeletedError(append.stream, *actual);
        }
        if (!append.expected.matches(actual)) {
          throw ConcurrencyError(append.stream, append.expected, actual);
        }
      }
      results = write_locked(appends);
    }
    notifier_->notify();
    return results;
  }

 private:
  std::optional<StreamVersion> version_locked(const StreamId& stream) const {
    const auto found = streams_.find(stream.value());
    if (found == streams_.end()) return std::nullopt;
    return static_cast<StreamVersion>(found->second.size());
  }

  // True when the stream's last event is a tombstone.
  bool deleted_locked(const StreamId& stream) const {
    const auto found = streams_.find(stream.value());
    return found != streams_.end() && !found->second.empty() &&
           log_[found->second.back()].type == kStreamDeletedType;
  }

  // Phase 1 of the SQL function. Returns the original results when every stream is an exact
  // re-send; empty when no id of the request is stored; throws IdempotencyError otherwise.
  std::optional<std::vector<AppendResult>> find_exact_resend_locked(
      const std::vector<PendingAppend>& appends) const {
    std::vector<std::optional<AppendResult>> resent(appends.size());
    std::size_t resent_count = 0;
    for (std::size_t s = 0; s < appends.size(); ++s) {
      const PendingAppend& append = appends[s];
      const bool any_stored =
          std::any_of(append.events.begin(), append.events.end(),
                      [&](const detail::EncodedEvent& event) { return ids_.contains(event.id); });
      if (!any_stored) continue;
      resent[s] = exact_resend_locked(append);
      if (!resent[s]) {
        throw IdempotencyError("some event ids of the append to stream \"" + append.stream.value() +
                               "\" are already stored, but not as exactly this append (in this "
                               "stream, in this order, at consecutive versions)");
      }
      ++resent_count;
    }
    if (resent_count == 0) return std::nullopt;
    if (resent_count < appends.size()) {
      const auto first = std::find_if(resent.begin(), resent.end(),
                                      [](const auto& result) { return result.has_value(); });
      throw IdempotencyError("the multi-stream append re-sends the stored events of stream \"" +
                             (*first)->stream_id.value() +
                             "\" but has new events for other streams");
    }
    std::vector<AppendResult> results;
    results.reserve(resent.size());
    for (auto& result : resent) results.push_back(*std::move(result));
    return results;
  }

  // The original result when every id of `append` is stored in its stream, in order, at
  // consecutive versions; empty otherwise. Throws IdempotencyError when they are, but some
  // event's content differs from the stored one.
  std::optional<AppendResult> exact_resend_locked(const PendingAppend& append) const {
    const RecordedEvent* first = nullptr;
    const RecordedEvent* last = nullptr;
    for (std::size_t k = 0; k < append.events.size(); ++k) {
      const auto found = ids_.find(append.events[k].id);
      if (found == ids_.end()) return std::nullopt;
      const RecordedEvent& stored = log_[found->second];
      if (stored.stream_id != append.stream) return std::nullopt;
      if (first == nullptr) first = &stored;
      if (stored.version != first->version + static_cast<StreamVersion>(k)) return std::nullopt;
      last = &stored;
    }
    // Same ids at the same places: exact only if the content is the stored one too (outcome 4
    // of annals.append_events, sql/0009_refuse_changed_resend.sql).
    for (std::size_t k = 0; k < append.events.size(); ++k) {
      const RecordedEvent& stored = log_[ids_.at(append.events[k].id)];
      const unsigned parts =
          (stored.type != append.events[k].type ? detail::kChangedType : 0U) |
          (stored.schema_version != append.events[k].schema_version ? detail::kChangedSchemaVersion
                                                                    : 0U) |
          (stored.data != append.data[k] ? detail::kChangedData : 0U) |
          (stored.metadata != append.metadata[k] ? detail::kChangedMetadata : 0U);
      if (parts != 0) {
        detail::throw_changed_resend(append.stream, stored.version, stored.id, parts);
      }
    }
    return AppendResult{append.stream, first->version, last->version, last->position};
  }

  // Phase 2: one commit. Strong guarantee: on failure (only allocation can fail here) every
  // container is put back as it was.
  std::vector<AppendResult> write_locked(std::vector<PendingAppend>& appends) {
    const auto recorded_at = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
        std::chrono::time_point_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now()));  // timestamptz precision, like PostgreSQL
    const std::uint64_t commit = commit_counter_ + 1;
    const std::size_t old_size = log_.size();
    std::vector<std::string> created_streams;
    std::vector<AppendResult> results;
    try {
      results.reserve(appends.size());
      for (PendingAppend& append : appends) {
        auto [entry, created] = streams_.try_emplace(append.stream.value());
        if (created) created_streams.push_back(append.stream.value());
        std::vector<std::size_t>& indexes = entry->second;
        const auto first_version = static_cast<StreamVersion>(indexes.size()) + 1;
        for (std::size_t k = 0; k < append.events.size(); ++k) {
          detail::EncodedEvent& event = append.events[k];
          log_.push_back(RecordedEvent{
              .stream_id = append.stream,
              .version = static_cast<StreamVersion>(indexes.size()) + 1,
              .position = Position(commit, static_cast<std::int64_t>(log_.size()) + 1),
              .id = event.id,
              .type = std::move(event.type),
              .schema_version = event.schema_version,
              .data = std::move(append.data[k]),
              .metadata = std::move(append.metadata[k]),
              .recorded_at = recorded_at});
          indexes.push_back(log_.size() - 1);
          ids_.emplace(event.id, log_.size() - 1);
        }
        results.push_back(AppendResult{append.stream, first_version,
                                       static_cast<StreamVersion>(indexes.size()),
                                       log_.back().position});
      }
    } catch (...) {
      for (std::size_t i = old_size; i < log_.size(); ++i) {
        ids_.erase(log_[i].id);
        if (auto found = streams_.find(log_[i].stream_id.value()); found != streams_.end()) {
          if (!found->second.empty() && found->second.back() >= old_size) found->second.pop_back();
        }
      }
      for (const auto& stream : created_streams) streams_.erase(stream);
      log_.erase(log_.begin() + static_cast<std::ptrdiff_t>(old_size), log_.end());
      throw;
    }
    commit_counter_ = commit;
    return results;
  }

  std::shared_ptr<AppendNotifier> notifier_;

  std::mutex mutex_;                // guards everything below
  std::vector<RecordedEvent> log_;  // in position order; sequence = index + 1
  std::unordered_map<std::string, std::vector<std::size_t>> streams_;  // version v at [v - 1]
  std::unordered_map<EventId, std::size_t, EventIdHash> ids_;          // id -> index in log_
  std::unordered_map<std::string, StreamMetadata> metadata_;           // retention rules
  std::uint64_t commit_counter_ = 0;
};

// Keeps the log alive for as long as the subscription's thread reads it.
class InMemorySubscription final : public Subscription {
 public:
  InMemorySubscription(std::shared_ptr<InMemoryLog> log, std::unique_ptr<Subscription> engine)
      : log_(std::move(log)), engine_(std::move(engine)) {}

  void stop() override { engine_->stop(); }
  bool is_running() const override { return engine_->is_running(); }
  bool is_live() const override { return engine_->is_live(); }
  SubscriptionState state() const override { return engine_->state(); }
  Position position() const override { return engine_->position(); }
  std::exception_ptr stop_reason() const override { return engine_->stop_reason(); }
  bool wait_for(Position position, std::chrono::milliseconds timeout) override {
    return engine_->wait_for(position, timeout);
  }

 private:
  std::shared_ptr<InMemoryLog> log_;  // destroyed after engine_ (declared first)
  std::unique_ptr<Subscription> engine_;
};

class InMemoryEventStore final : public EventStore {
 public:
  explicit InMemoryEventStore(InMemoryEventStoreOptions options)
      : limits_(options.limits),
        log_(std::make_shared<InMemoryLog>()),
        metrics_(std::move(options.metrics)) {}

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    if (!metrics_.enabled()) return log_->read_stream(stream, options);
    return measured_read(kStreamLabels, [&] { return log_->read_stream(stream, options); });
  }

  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    if (!metrics_.enabled()) return log_->read_all(options);
    return measured_read(kAllLabels, [&] { return log_->read_all(options); });
  }

  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    return log_->stream_version(stream);
  }

  Position head_position() override { return log_->head_position(); }

  StreamState stream_state(const StreamId& stream) override { return log_->stream_state(stream); }

  void set_stream_metadata(const StreamId& stream, const StreamMetadata& metadata) override {
    log_->set_stream_metadata(stream, metadata);
  }

  std::unique_ptr<ChangeSignal> watch() override {
    return std::make_unique<InMemoryChangeSignal>(log_->notifier());
  }

  AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                      std::vector<NewEvent> events) override {
    return std::move(measured_append([&] {
                       std::vector<PendingAppend> pending;
                       pending.push_back(
                           prepare(stream, expected, false,
                                   detail::encode_events(stream, std::move(events), limits_)));
                       return pending;
                     }).front());
  }

  std::vector<AppendResult> append_multi(std::vector<StreamAppend> appends) override {
    return measured_append([&] {
      detail::validate_multi_append(appends, limits_);
      std::vector<PendingAppend> pending;
      pending.reserve(appends.size());
      for (StreamAppend& append : appends) {
        pending.push_back(
            prepare(append.stream_id, append.expected, append.reopen,
                    detail::encode_events(append.stream_id, std::move(append.events), limits_)));
      }
      return pending;
    });
  }

  std::unique_ptr<Subscription> subscribe(SubscriptionOptions options,
                                          EventHandler handler) override {
    if (!options.metrics) options.metrics = metrics_.sink();
    auto engine = detail::make_catch_up_subscription(
        *log_, std::make_unique<InMemoryChangeSignal>(log_->notifier()), std::move(options),
        std::move(handler));
    return std::make_unique<InMemorySubscription>(log_, std::move(engine));
  }

 private:
  static constexpr MetricLabels kStoreLabels{.store = "memory"};
  static constexpr MetricLabels kStreamLabels{.store = "memory", .kind = "stream"};
  static constexpr MetricLabels kAllLabels{.store = "memory", .kind = "all"};

  // Encodes and appends (`prepare_appends` returns the pending appends), counting the outcome,
  // the events written and the time taken (metrics.hpp) when a sink is attached.
  template <typename Prepare>
  std::vector<AppendResult> measured_append(Prepare&& prepare_appends) {
    const auto started = metrics_.start();
    bool resent = false;
    try {
      std::vector<PendingAppend> pending = std::forward<Prepare>(prepare_appends)();
      auto results = log_->append(pending, resent);
      if (metrics_.enabled()) {
        std::size_t events = 0;
        for (const auto& append : pending) events += append.events.size();
        metrics_.append_done(kStoreLabels.store, !resent, events, started);
      }
      return results;
    } catch (...) {
      metrics_.append_failed(kStoreLabels.store, started);
      throw;
    }
  }

  template <typename Read>
  std::vector<RecordedEvent> measured_read(const MetricLabels& labels, Read&& read) {
    const auto started = metrics_.start();
    auto events = std::forward<Read>(read)();
    metrics_.read_done(labels, events.size(), started);
    return events;
  }

  const AppendLimits limits_;
  std::shared_ptr<InMemoryLog> log_;
  detail::MetricsRecorder metrics_;
};

}  // namespace

std::unique_ptr<EventStore> make_in_memory_event_store(InMemoryEventStoreOptions options) {
  return std::make_unique<InMemoryEventStore>(std::move(options));
}

}  // namespace annals
