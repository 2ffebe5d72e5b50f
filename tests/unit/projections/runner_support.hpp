// Test helpers for the runner's unit tests: a recording in-process projection and a
// ProjectionStore decorator that counts applies per batch and injects faults (LevelDB's
// ErrorEnv idea, STYLE 2.7).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections::test {

/// Where Recorders put what they were given; several projection objects (one per runner,
/// as in several processes) may share one to prove that nothing is applied twice.
class Sink {
 public:
  void add(const RecordedEvent& event) {
    std::lock_guard lock(mutex_);
    events_.push_back(event);
  }
  void clear() {
    std::lock_guard lock(mutex_);
    events_.clear();
  }
  [[nodiscard]] std::vector<RecordedEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  [[nodiscard]] std::vector<Position> positions() const {
    std::vector<Position> out;
    for (const auto& event : events()) out.push_back(event.position);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<RecordedEvent> events_;
};

/// An in-process projection that records every event it is given. Events whose data has
/// "poison": true fail while `broken` is set; `transient_failures` makes that many applies of
/// any event fail first.
class Recorder final : public InProcessProjection {
 public:
  explicit Recorder(std::string name, EventFilter filter = {},
                    std::shared_ptr<Sink> sink = std::make_shared<Sink>())
      : name_(std::move(name)), filter_(std::move(filter)), sink_(std::move(sink)) {}

  std::string name() const override { return name_; }
  EventFilter filter() const override { return filter_; }

  void handle(const RecordedEvent& event) override {
    ++applies;
    if (transient_failures.load() > 0 && transient_failures.fetch_sub(1) > 0) {
      throw std::runtime_error("transient failure at " + event.position.to_string());
    }
    if (broken.load() && event.data.value("poison", false)) {
      throw std::runtime_error("cannot apply poison event " + event.id.to_string());
    }
    sink_->add(event);
  }

  void clear() override {
    ++clears;
    if (clear_fails.load()) throw std::runtime_error("cannot clear the sink");
    sink_->clear();
  }

  Sink& sink() { return *sink_; }

  std::atomic<bool> broken{true};
  std::atomic<int> transient_failures{0};
  std::atomic<int> applies{0};
  std::atomic<int> clears{0};
  std::atomic<bool> clear_fails{false};

 private:
  std::string name_;
  EventFilter filter_;
  std::shared_ptr<Sink> sink_;
};

/// Forwards to another ProjectionStore. Records how many events the projection applied in
/// each committed batch (read from `applies`), and injects faults on request.
class DecoratedStore final : public ProjectionStore {
 public:
  DecoratedStore(ProjectionStore& inner, const std::atomic<int>& applies)
      : inner_(inner), applies_(applies) {}

  /// Commits that throw UnavailableError (before reaching the inner store).
  std::atomic<int> failing_commits{0};
  /// Renewals that report the lease lost.
  std::atomic<int> refused_renewals{0};

  /// Applies per committed batch, in commit order.
  std::vector<int> applies_per_commit() const {
    std::lock_guard lock(mutex_);
    return applies_per_commit_;
  }

  void prepare(Projection& projection) override { inner_.prepare(projection); }
  std::optional<Lease> try_acquire(const std::string& projection, const std::string& owner,
                                   std::chrono::milliseconds ttl) override {
    return inner_.try_acquire(projection, owner, ttl);
  }
  std::optional<Lease> renew(const Lease& lease, std::chrono::milliseconds ttl) override {
    if (refused_renewals.load() > 0 && refused_renewals.fetch_sub(1) > 0) return std::nullopt;
    return inner_.renew(lease, ttl);
  }
  void release(const Lease& lease) override { inner_.release(lease); }
  Position checkpoint(const std::string& projection) override {
    return inner_.checkpoint(projection);
  }
  std::unique_ptr<Batch> begin(const Lease& lease, Position checkpoint) override {
    return std::make_unique<DecoratedBatch>(*this, inner_.begin(lease, checkpoint));
  }
  void report(const Lease& lease, const ProjectionReport& report) override {
    inner_.report(lease, report);
  }
  std::vector<ProjectionRecord> list() override { return inner_.list(); }
  std::vector<DeadLetter> list_dead_letters(const DeadLetterQuery& query) override {
    return inner_.list_dead_letters(query);
  }
  void request_retry(std::int64_t id) override { inner_.request_retry(id); }
  void skip(std::int64_t id) override { inner_.skip(id); }
  void retry_failed(std::int64_t id, const std::string& error) override {
    inner_.retry_failed(id, error);
  }
  RebuildRequest request_rebuild(const std::string& projection) override {
    return inner_.request_rebuild(projection);
  }
  std::optional<RebuildRequest> rebuild_request(std::int64_t id) override {
    return inner_.rebuild_request(id);
  }
  std::optional<RebuildRequest> open_rebuild(const std::string& projection) override {
    return inner_.open_rebuild(projection);
  }
  void update_rebuild(const RebuildRequest& request) override { inner_.update_rebuild(request); }

 private:
  class DecoratedBatch final : public Batch {
   public:
    DecoratedBatch(DecoratedStore& store, std::unique_ptr<Batch> inner)
        : store_(store), inner_(std::move(inner)), applies_at_begin_(store.applies_.load()) {}
    void park(const RecordedEvent& event, const std::string& error, int attempts) override {
      inner_->park(event, error, attempts);
    }
    void resolve_dead_letter(std::int64_t id) override { inner_->resolve_dead_letter(id); }
    void set_pipelined(bool pipelined) override { inner_->set_pipelined(pipelined); }
    void commit(Position checkpoint) override {
      if (store_.failing_commits.load() > 0 && store_.failing_commits.fetch_sub(1) > 0) {
        throw UnavailableError("injected: connection lost before commit");
      }
      inner_->commit(checkpoint);
      std::lock_guard lock(store_.mutex_);
      store_.applies_per_commit_.push_back(store_.applies_.load() - applies_at_begin_);
    }

   private:
    DecoratedStore& store_;
    std::unique_ptr<Batch> inner_;
    int applies_at_begin_;
  };

  ProjectionStore& inner_;
  const std::atomic<int>& applies_;
  mutable std::mutex mutex_;
  std::vector<int> applies_per_commit_;  // guarded by mutex_
};

/// Waits until `condition()` holds, checking every millisecond, for at most `timeout`; true
/// when it held. For states that have no notification of their own (a runner's status, a
/// rebuild request's row); the wait is bounded and never assumed long enough.
template <typename Condition>
bool eventually(Condition condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace annals::projections::test
