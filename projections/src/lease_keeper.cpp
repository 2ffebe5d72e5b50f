// A projection worker's lease and its heartbeat (see lease_keeper.hpp).
//
// The heartbeat renews outside the mutex (a renewal is a round trip to the store) and applies
// the result only if the lease is still the one it renewed (same generation): a renewal that
// comes back after the worker dropped or released the lease, or took a new one, is ignored.
#include "lease_keeper.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"

namespace annals::projections::detail {

using annals::detail::logger;
using std::chrono::milliseconds;

LeaseKeeper::LeaseKeeper(ProjectionStore& store, std::string name, const RunnerOptions& runner,
                         WorkerStatus& status)
    : store_(store), name_(std::move(name)), runner_(runner), status_(status) {}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool LeaseKeeper::try_acquire() {
  auto lease = store_.try_acquire(name_, runner_.owner, runner_.lease_ttl);
  if (!lease) return false;
  {
    std::lock_guard lock(mutex_);
    lease_ = std::move(lease);
    lost_ = false;
    ++generation_;
    renew_at_ = Clock::now() + renew_period();
  }
  changed_.notify_all();
  if (!thread_.joinable()) thread_ = std::thread([this] { heartbeat(); });
  return true;
}

void LeaseKeeper::publish() {
  std::lock_guard lock(mutex_);
  status_.set_lease(lease_);
}

void LeaseKeeper::keep() {
  std::lock_guard lock(mutex_);
  if (lease_ && lost_) {
    throw OwnershipLostError("the lease of projection '" + name_ +
                             "' could not be renewed: it was taken over or released");
  }
}

void LeaseKeeper::release() {
  Lease lease;
  {
    std::lock_guard lock(mutex_);
    lease = *lease_;
    lease_.reset();
    ++generation_;
  }
  store_.release(lease);
}

void LeaseKeeper::drop() {
  std::lock_guard lock(mutex_);
  lease_.reset();
  ++generation_;
}

bool LeaseKeeper::held() const {
  std::lock_guard lock(mutex_);
  return lease_.has_value();
}

Lease LeaseKeeper::lease() const {
  std::lock_guard lock(mutex_);
  return *lease_;
}

bool LeaseKeeper::pause(milliseconds duration) {
  return !status_.wait_until_stopping(Clock::now() + duration);
}

void LeaseKeeper::heartbeat() {
  std::unique_lock lock(mutex_);
  while (!closing_) {
    if (!lease_ || lost_) {
      changed_.wait(lock);
    } else if (Clock::now() < renew_at_) {
      changed_.wait_until(lock, renew_at_);
    } else {
      renew_once(lock);
    }
  }
}

// Renews the lease once; `lock` is released during the round trip.
void LeaseKeeper::renew_once(std::unique_lock<std::mutex>& lock) {
  const Lease current = *lease_;
  const auto generation = generation_;
  lock.unlock();
  std::optional<Lease> renewed;
  std::exception_ptr failure;
  try {
    renewed = store_.renew(current, runner_.lease_ttl);
  } catch (...) {
    failure = std::current_exception();
  }
  lock.lock();
  if (generation != generation_ || !lease_) return;  // dropped, released or replaced meanwhile
  if (failure) {
    // Try again well before the lease lapses; a lapsed lease nobody took is still renewable.
    renew_at_ = Clock::now() + std::max(renew_period() / 4, milliseconds(1));
    if (!warned_) {
      logger()->warn("annals: projection {}: lease renewal failed ({}); retrying", name_,
                     what_of(failure));
      warned_ = true;
    }
    return;
  }
  warned_ = false;
  if (!renewed) {
    lost_ = true;
    logger()->warn("annals: projection {}: lease renewal refused (taken over or released)", name_);
    return;
  }
  lease_ = std::move(renewed);
  renew_at_ = Clock::now() + renew_period();
  status_.set_lease(lease_);
}

milliseconds LeaseKeeper::renew_period() const {
  return std::max(runner_.lease_ttl / 3, milliseconds(1));
}

}  // namespace annals::projections::detail
