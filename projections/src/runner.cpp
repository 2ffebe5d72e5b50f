// ProjectionRunner: one thread per projection (a Worker, worker.hpp), each with its own
// ChangeSignal; validation of the options, start and stop of the threads, and the signal
// handling of run_until_signal().
#include "annals/projections/runner.hpp"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/projections/documents.hpp"
#include "annals/projections/partitions.hpp"
#include "partition_group.hpp"
#include "worker.hpp"

namespace annals::projections {
namespace {

using annals::detail::logger;
using detail::Worker;
using std::chrono::milliseconds;

std::string random_hex(std::size_t count) {
  std::random_device device;
  std::mt19937 rng(device());
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

std::string default_owner() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const std::string hostname = host[0] != '\0' ? host : "localhost";
  return hostname + ":" + std::to_string(getpid()) + ":" + random_hex(4);
}

void validate(const RunnerOptions& options) {
  const auto positive = [](milliseconds value, const char* field) {
    if (value.count() <= 0) {
      throw InvalidArgumentError(std::string("invalid RunnerOptions::") + field + " of " +
                                 std::to_string(value.count()) + " ms: it must be positive");
    }
  };
  positive(options.lease_ttl, "lease_ttl");
  positive(options.acquire_interval, "acquire_interval");
  positive(options.poll_interval, "poll_interval");
  positive(options.request_interval, "request_interval");
}

void validate(const std::string& name, const ProjectionOptions& options) {
  const auto invalid = [&](const std::string& what) {
    throw InvalidArgumentError("invalid ProjectionOptions of projection '" + name + "': " + what);
  };
  if (options.batch_size == 0) invalid("batch_size must be at least 1");
  if (options.max_attempts < 1) {
    invalid("max_attempts must be at least 1, not " + std::to_string(options.max_attempts));
  }
  if (options.initial_backoff.count() < 0 || options.max_backoff.count() < 0) {
    invalid("initial_backoff and max_backoff must not be negative");
  }
  if (options.partitions < 1 || options.partitions > kMaxPartitions) {
    invalid("partitions must be between 1 and " + std::to_string(kMaxPartitions) + ", not " +
            std::to_string(options.partitions));
  }
  if (options.initial_backoff > options.max_backoff) {
    invalid("initial_backoff (" + std::to_string(options.initial_backoff.count()) +
            " ms) exceeds max_backoff (" + std::to_string(options.max_backoff.count()) + " ms)");
  }
}

}  // namespace

const char* to_string(ProjectionState state) noexcept {
  switch (state) {
    case ProjectionState::kStarting:
      return "starting";
    case ProjectionState::kStandby:
      return "standby";
    case ProjectionState::kCatchingUp:
      return "catching-up";
    case ProjectionState::kLive:
      return "live";
    case ProjectionState::kRebuilding:
      return "rebuilding";
    case ProjectionState::kReconnecting:
      return "reconnecting";
    case ProjectionState::kStopped:
      return "stopped";
    case ProjectionState::kFailed:
      return "failed";
  }
  return "unknown";
}

class ProjectionRunner::Impl {
 public:
  Impl(EventStore& events, ProjectionStore& store, RunnerOptions options)
      : events_(events), store_(store), options_(std::move(options)) {
    validate(options_);
    if (options_.owner.empty()) options_.owner = default_owner();
  }

  ~Impl() { stop(); }

  void add(std::shared_ptr<Projection> projection, ProjectionOptions options) {
    if (!projection) throw InvalidArgumentError("cannot add a null projection");
    const auto name = projection->name();
    validate_projection_name(name);
    validate(name, options);
    std::lock_guard lock(mutex_);
    if (started_ || stopped_) {
      throw InvalidArgumentError("cannot add projection '" + name +
                                 "': the runner has already started");
    }
    if (find(name) != nullptr || added_.contains(name)) {
      throw InvalidArgumentError("projection '" + name + "' was already added to this runner");
    }
    if (parse_partition_name(name) || parse_seat_name(name)) {
      throw InvalidArgumentError("invalid projection name '" + name +
                                 "': names ending in .part-<k>-of-<n> or .runner-<k> are the "
                                 "rows of partitioned projections");
    }
    store_.prepare(*projection);
    const int count = partition_count(name, options, *projection);
    added_.insert(name);
    if (count == 1) {
      workers_.push_back(
          std::make_unique<Worker>(events_, store_, options_, std::move(projection), options));
      return;
    }
    auto group = std::make_shared<detail::PartitionGroup>(store_, name, count, options_);
    const auto calls = std::make_shared<std::mutex>();
    for (int k = 0; k < count; ++k) {
      auto partition = std::make_shared<detail::PartitionProjection>(projection, calls, k, count);
      store_.prepare(*partition);  // registers the row; the projection's setup ran above
      workers_.push_back(std::make_unique<Worker>(events_, store_, options_, std::move(partition),
                                                  options, group));
    }
    groups_.push_back(std::move(group));
    logger()->info("annals: projection {} runs as {} partitions", name, count);
  }

  void start() {
    std::lock_guard lock(mutex_);
    if (started_ || stopped_) return;
    std::vector<std::unique_ptr<ChangeSignal>> signals;
    signals.reserve(workers_.size());
    for (std::size_t i = 0; i < workers_.size(); ++i) signals.push_back(events_.watch());
    started_ = true;
    for (auto& group : groups_) group->start();
    for (std::size_t i = 0; i < workers_.size(); ++i) workers_[i]->start(std::move(signals[i]));
    logger()->info("annals: projection runner {} started {} projection(s)", options_.owner,
                   workers_.size());
  }

  void stop() {
    // A second caller waits until the first has joined every thread. status() and wait_for()
    // stay answerable meanwhile: the list cannot change once stopped_ is set.
    std::lock_guard joining(stop_mutex_);
    bool was_started = false;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      was_started = started_;
      for (auto& worker : workers_) worker->request_stop();
    }
    for (auto& worker : workers_) worker->join();
    for (auto& group : groups_) group->stop();  // the seats last, once no partition is held
    if (was_started) {
      logger()->info("annals: projection runner {} stopped", options_.owner);
    }
  }

  const std::string& owner() const noexcept { return options_.owner; }

  std::vector<ProjectionStatus> status() const {
    std::vector<ProjectionStatus> out;
    std::lock_guard lock(mutex_);
    out.reserve(workers_.size());
    for (const auto& worker : workers_) out.push_back(worker->status());
    return out;
  }

  Worker& worker(const std::string& name) const {
    std::lock_guard lock(mutex_);
    if (Worker* found = find(name)) return *found;
    throw NotFoundError("projection '" + name + "' is not run by this runner");
  }

  ProjectionStore& store() { return store_; }

 private:
  // How many partitions `name` runs as: the stored count, or the configured one when the
  // projection is partitioned for the first time.
  int partition_count(const std::string& name, const ProjectionOptions& options,
                      const Projection& projection) {
    const int stored = stored_partition_count(store_, name);
    int count = stored;
    if (stored == 1 && options.partitions > 1) {
      for (const auto& record : store_.list()) {
        if (record.name == name &&
            (record.checkpoint != Position::start() || record.fencing_token != 0)) {
          throw InvalidArgumentError(
              "projection '" + name + "' already ran unpartitioned (checkpoint " +
              record.checkpoint.to_string() +
              "): change its partitions with annals::projections::repartition()");
        }
      }
      count = options.partitions;
    } else if (stored > 1 && options.partitions != stored) {
      logger()->info(
          "annals: projection {}: the store has {} partitions (repartition() changes them); "
          "ProjectionOptions::partitions {} does not apply",
          name, stored, options.partitions);
    }
    if (count > 1 && dynamic_cast<const DocumentProjection*>(&projection) != nullptr) {
      throw InvalidArgumentError("projection '" + name +
                                 "' is a DocumentProjection, which cannot be partitioned");
    }
    return count;
  }

  Worker* find(const std::string& name) const {
    for (const auto& worker : workers_) {
      if (worker->name() == name) return worker.get();
    }
    return nullptr;
  }

  EventStore& events_;
  ProjectionStore& store_;
  RunnerOptions options_;
  std::mutex stop_mutex_;     // held by stop() while it joins
  mutable std::mutex mutex_;  // guards the flags and the list (which add() alone changes)
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::set<std::string> added_;  // the names given to add()
  std::vector<std::shared_ptr<detail::PartitionGroup>> groups_;
};

ProjectionRunner::ProjectionRunner(EventStore& events, ProjectionStore& store,
                                   RunnerOptions options)
    : impl_(std::make_unique<Impl>(events, store, std::move(options))) {}

ProjectionRunner::~ProjectionRunner() = default;

void ProjectionRunner::add(std::shared_ptr<Projection> projection, ProjectionOptions options) {
  impl_->add(std::move(projection), options);
}

void ProjectionRunner::start() { impl_->start(); }

void ProjectionRunner::stop() { impl_->stop(); }

void ProjectionRunner::run_until_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigset_t previous;
  if (const int rc = pthread_sigmask(SIG_BLOCK, &signals, &previous); rc != 0) {
    throw InternalError("pthread_sigmask failed with error " + std::to_string(rc));
  }
  try {
    impl_->start();  // the threads inherit the blocked mask
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    throw;
  }
  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  logger()->info("annals: projection runner {} received signal {}; stopping", impl_->owner(),
                 received);
  impl_->stop();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

const std::string& ProjectionRunner::owner() const noexcept { return impl_->owner(); }

std::vector<ProjectionStatus> ProjectionRunner::status() const { return impl_->status(); }

ProjectionStatus ProjectionRunner::status(const std::string& name) const {
  return impl_->worker(name).status();
}

bool ProjectionRunner::wait_for(const std::string& name, Position position,
                                std::chrono::milliseconds timeout) {
  return impl_->worker(name).wait_for(position, timeout);
}

RebuildRequest ProjectionRunner::rebuild(const std::string& name) {
  auto& worker = impl_->worker(name);
  auto request = impl_->store().request_rebuild(name);
  worker.poke();
  return request;
}

}  // namespace annals::projections
