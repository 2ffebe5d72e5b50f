// A projection worker's lease (see lease_keeper.hpp).
#include "lease_keeper.hpp"

#include <algorithm>
#include <utility>

#include "annals/eventstore/error.hpp"

namespace annals::projections::detail {

using std::chrono::milliseconds;

LeaseKeeper::LeaseKeeper(ProjectionStore& store, std::string name, const RunnerOptions& runner,
                         WorkerStatus& status)
    : store_(store), name_(std::move(name)), runner_(runner), status_(status) {}

bool LeaseKeeper::try_acquire() {
  auto lease = store_.try_acquire(name_, runner_.owner, runner_.lease_ttl);
  if (!lease) return false;
  lease_ = std::move(lease);
  renew_at_ = Clock::now() + renew_period();
  return true;
}

void LeaseKeeper::publish() { status_.set_lease(lease_); }

void LeaseKeeper::keep() {
  if (!lease_ || Clock::now() < renew_at_) return;
  auto renewed = store_.renew(*lease_, runner_.lease_ttl);
  if (!renewed) {
    throw OwnershipLostError("the lease of projection '" + name_ + "' could not be renewed");
  }
  lease_ = std::move(renewed);
  renew_at_ = Clock::now() + renew_period();
  status_.set_lease(lease_);
}

void LeaseKeeper::release() { store_.release(*lease_); }

bool LeaseKeeper::pause(milliseconds duration) {
  const auto deadline = Clock::now() + duration;
  for (;;) {
    const auto wake = lease_ ? std::min(deadline, renew_at_) : deadline;
    if (status_.wait_until_stopping(wake)) return false;
    if (Clock::now() >= deadline) return true;
    keep();
  }
}

milliseconds LeaseKeeper::renew_period() const {
  return std::max(runner_.lease_ttl / 3, milliseconds(1));
}

}  // namespace annals::projections::detail
