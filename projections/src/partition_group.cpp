// A runner's share of a partitioned projection (see partition_group.hpp).
#include "partition_group.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/projections/partitions.hpp"

namespace annals::projections::detail {

using annals::detail::logger;

PartitionProjection::PartitionProjection(std::shared_ptr<Projection> projection,
                                         std::shared_ptr<std::mutex> calls, int index, int count)
    : projection_(std::move(projection)),
      calls_(std::move(calls)),
      index_(index),
      count_(count),
      name_(partition_name(projection_->name(), index, count)) {}

void PartitionProjection::apply(const RecordedEvent& event, UnitOfWork& work) {
  std::lock_guard lock(*calls_);
  projection_->apply(event, work);
}

void PartitionProjection::reset(UnitOfWork&) {
  // The read model is shared by every partition: resetting it under one partition's checkpoint
  // would leave the others' checkpoints past events it no longer has.
  throw InvalidArgumentError("'" + name_ +
                             "' is one partition: rebuild all of them at once with "
                             "annals::projections::rebuild_partitions()");
}

bool PartitionProjection::owns(const RecordedEvent& event) const {
  return partition_of(event.stream_id.value(), count_) == index_;
}

PartitionGroup::PartitionGroup(ProjectionStore& store, std::string projection, int count,
                               const RunnerOptions& runner)
    : store_(store), projection_(std::move(projection)), count_(count), runner_(runner) {
  // Seats are plain rows: registering them runs nothing.
  class Seat final : public Projection {
   public:
    explicit Seat(std::string name) : name_(std::move(name)) {}
    std::string name() const override { return name_; }
    void apply(const RecordedEvent&, UnitOfWork&) override {}
    void reset(UnitOfWork&) override {}

   private:
    std::string name_;
  };
  for (int k = 0; k < count_; ++k) {
    Seat seat(seat_name(projection_, k));
    store_.prepare(seat);
  }
}

PartitionGroup::~PartitionGroup() { stop(); }

void PartitionGroup::start() {
  {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || stopping_) return;
  }
  // The first count before any worker asks for a partition. (start() runs once, from the
  // runner's start(), before the thread exists.)
  try {
    turn();
  } catch (const std::exception& e) {
    logger()->debug("annals: projection {}: counting runners failed: {}", projection_, e.what());
  }
  std::lock_guard lock(mutex_);
  thread_ = std::thread([this] { run(); });
}

void PartitionGroup::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::optional<Lease> seat;
  {
    std::lock_guard lock(mutex_);
    seat.swap(seat_);
    share_ = 0;
  }
  if (seat) {
    try {
      store_.release(*seat);
    } catch (const std::exception& e) {
      logger()->warn("annals: projection {}: could not release the runner seat {}: {}", projection_,
                     seat->projection, e.what());
    }
  }
}

bool PartitionGroup::reserve(int index) {
  std::lock_guard lock(mutex_);
  if (stopping_ || static_cast<int>(held_.size()) >= share_) return false;
  held_.insert(index);
  return true;
}

void PartitionGroup::released(int index) {
  std::lock_guard lock(mutex_);
  held_.erase(index);
}

bool PartitionGroup::must_release(int index) const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(held_.size()) > share_ && !held_.empty() && *held_.rbegin() == index;
}

int PartitionGroup::live_runners() const {
  std::lock_guard lock(mutex_);
  return live_;
}

int PartitionGroup::share() const {
  std::lock_guard lock(mutex_);
  return share_;
}

void PartitionGroup::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      turn();
    } catch (const std::exception& e) {
      // The store is unavailable: keep the share as it was; the partitions' own leases decide.
      logger()->debug("annals: projection {}: counting runners failed: {}", projection_, e.what());
    }
    lock.lock();
    // Often enough to renew the seat in time whatever acquire_interval is.
    const auto period =
        std::min<std::chrono::milliseconds>(runner_.acquire_interval, runner_.lease_ttl / 3);
    wake_.wait_for(lock, period, [this] { return stopping_; });
  }
}

// Holds (takes or renews) this runner's seat, then counts the seats held.
void PartitionGroup::turn() {
  std::optional<Lease> seat;
  {
    std::lock_guard lock(mutex_);
    seat = seat_;
  }
  const auto now = std::chrono::steady_clock::now();
  bool refreshed = false;
  if (seat && now >= renew_at_) {
    seat = store_.renew(*seat, runner_.lease_ttl);
    refreshed = seat.has_value();
    if (!seat) {
      logger()->warn("annals: projection {}: runner seat lost; taking one again", projection_);
    }
  }
  for (int k = 0; k < count_ && !seat; ++k) {
    seat = store_.try_acquire(seat_name(projection_, k), runner_.owner, runner_.lease_ttl);
    refreshed = seat.has_value();
  }
  if (refreshed) renew_at_ = now + runner_.lease_ttl / 3;
  int live = 0;
  for (const auto& record : store_.list()) {
    const auto of = parse_seat_name(record.name);
    if (of && *of == projection_ && record.owned) ++live;
  }
  if (seat) live = std::max(live, 1);
  std::lock_guard lock(mutex_);
  seat_ = seat;
  live_ = std::max(live, 1);
  share_ = seat ? (count_ + live_ - 1) / live_ : 0;
}

}  // namespace annals::projections::detail
