// Fault-injecting decorators over the store interfaces (LevelDB's ErrorEnv, STYLE 2.7): make
// conflicts, outages and failing snapshot stores happen exactly when a test wants them,
// without sleeps or timing.
//
//   annals::testkit::FaultInjectingEventStore store(*inner);
//   store.inject_concurrent_append(stream, {other_writers_event});  // before the next append
//   bus.send(Withdraw{...});                                         // conflicts once, retries
//   EXPECT_EQ(store.append_calls(), 2);
//
// Thread safety: every method may be called from any thread; injected faults are consumed
// by the first matching call.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"

namespace annals::testkit {

/// An EventStore that forwards every call to another one (not owned). Base of decorators.
class ForwardingEventStore : public EventStore {
 public:
  explicit ForwardingEventStore(EventStore& inner) : inner_(inner) {}

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    return inner_.read_stream(stream, options);
  }
  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    return inner_.read_all(options);
  }
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    return inner_.stream_version(stream);
  }
  Position head_position() override { return inner_.head_position(); }
  StreamState stream_state(const StreamId& stream) override { return inner_.stream_state(stream); }
  void set_stream_metadata(const StreamId& stream, const StreamMetadata& metadata) override {
    inner_.set_stream_metadata(stream, metadata);
  }
  AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                      std::vector<NewEvent> events) override {
    return inner_.append(stream, expected, std::move(events));
  }
  std::vector<AppendResult> append_multi(std::vector<StreamAppend> appends) override {
    return inner_.append_multi(std::move(appends));
  }
  std::unique_ptr<Subscription> subscribe(SubscriptionOptions options,
                                          EventHandler handler) override {
    return inner_.subscribe(std::move(options), std::move(handler));
  }
  std::unique_ptr<ChangeSignal> watch() override { return inner_.watch(); }

 protected:
  EventStore& inner() noexcept { return inner_; }

 private:
  EventStore& inner_;
};

/// Injects concurrent writers and infrastructure failures into appends, and counts calls.
class FaultInjectingEventStore : public ForwardingEventStore {
 public:
  /// How an injected append failure behaves.
  enum class Failure {
    kUnavailable,            ///< throws UnavailableError; nothing written
    kOutcomeUnknownWritten,  ///< writes, then throws OutcomeUnknownError (commit in doubt)
  };

  using ForwardingEventStore::ForwardingEventStore;

  /// Before the next append to `stream`, another writer appends `events` (expected version
  /// any), so that append sees a version it did not expect. Queue several to make several
  /// appends conflict.
  void inject_concurrent_append(const StreamId& stream, std::vector<NewEvent> events) {
    std::lock_guard lock(mutex_);
    concurrent_[stream.value()].push_back(std::move(events));
  }

  /// Makes the next `count` appends (to any stream) fail as `failure` says.
  void fail_next_appends(std::size_t count, Failure failure) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < count; ++i) failures_.push_back(failure);
  }

  /// Appends and stream reads made through this decorator (injected appends not counted).
  [[nodiscard]] std::size_t append_calls() const noexcept { return appends_.load(); }
  [[nodiscard]] std::size_t read_stream_calls() const noexcept { return reads_.load(); }

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    ++reads_;
    return ForwardingEventStore::read_stream(stream, options);
  }

  AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                      std::vector<NewEvent> events) override {
    ++appends_;
    std::optional<std::vector<NewEvent>> concurrent;
    std::optional<Failure> failure;
    {
      std::lock_guard lock(mutex_);
      if (auto found = concurrent_.find(stream.value());
          found != concurrent_.end() && !found->second.empty()) {
        concurrent = std::move(found->second.front());
        found->second.pop_front();
      }
      if (!failures_.empty()) {
        failure = failures_.front();
        failures_.pop_front();
      }
    }
    if (concurrent) inner().append(stream, ExpectedVersion::any(), std::move(*concurrent));
    if (failure == Failure::kUnavailable) {
      throw UnavailableError("injected: append to \"" + stream.value() + "\" unavailable");
    }
    if (failure == Failure::kOutcomeUnknownWritten) {
      (void)inner().append(stream, expected, std::move(events));
      throw OutcomeUnknownError("injected: the connection broke after the append to \"" +
                                stream.value() + "\" was sent");
    }
    return inner().append(stream, expected, std::move(events));
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::deque<std::vector<NewEvent>>> concurrent_;
  std::deque<Failure> failures_;
  std::atomic<std::size_t> appends_{0};
  std::atomic<std::size_t> reads_{0};
};

/// A SnapshotStore decorator whose loads and saves fail on demand, and which counts calls.
class FaultInjectingSnapshotStore : public SnapshotStore {
 public:
  explicit FaultInjectingSnapshotStore(SnapshotStore& inner) : inner_(inner) {}

  /// While set, save() throws UnavailableError and stores nothing.
  void fail_saves(bool fail) noexcept { fail_saves_ = fail; }
  /// While set, load() throws UnavailableError.
  void fail_loads(bool fail) noexcept { fail_loads_ = fail; }

  [[nodiscard]] std::size_t save_calls() const noexcept { return saves_.load(); }
  [[nodiscard]] std::size_t load_calls() const noexcept { return loads_.load(); }

  std::optional<Snapshot> load(const StreamId& stream) override {
    ++loads_;
    if (fail_loads_) throw UnavailableError("injected: snapshot store unavailable (load)");
    return inner_.load(stream);
  }
  SnapshotLookup lookup(const StreamId& stream) override {
    ++loads_;
    if (fail_loads_) throw UnavailableError("injected: snapshot store unavailable (load)");
    return inner_.lookup(stream);
  }
  SnapshotStoreStats stats() const override { return inner_.stats(); }
  void save(const Snapshot& snapshot) override {
    ++saves_;
    if (fail_saves_) throw UnavailableError("injected: snapshot store unavailable (save)");
    inner_.save(snapshot);
  }
  void remove(const StreamId& stream) override { inner_.remove(stream); }

 private:
  SnapshotStore& inner_;
  std::atomic<bool> fail_saves_{false};
  std::atomic<bool> fail_loads_{false};
  std::atomic<std::size_t> saves_{0};
  std::atomic<std::size_t> loads_{0};
};

}  // namespace annals::testkit
