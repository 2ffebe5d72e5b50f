// Partitioned projections: the stream hash, the row names, and the two offline procedures that
// change a projection's partitions all at once (repartition, rebuild_partitions). What runs the
// partitions is the runner's (partition_group.hpp).
#include "annals/projections/partitions.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"

namespace annals::projections {
namespace {

using annals::detail::logger;

constexpr std::string_view kPartPrefix = ".part-";
constexpr std::string_view kOf = "-of-";
constexpr std::string_view kSeatPrefix = ".runner-";

void check_count(int count) {
  if (count < 1 || count > kMaxPartitions) {
    throw InvalidArgumentError("invalid partition count " + std::to_string(count) +
                               ": it must be between 1 and " + std::to_string(kMaxPartitions));
  }
}

// A decimal number without sign or leading zeros (so that a name has one spelling).
std::optional<int> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 4 || (text.size() > 1 && text.front() == '0')) return {};
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return {};
  return value;
}

std::string validated(std::string name) {
  validate_projection_name(name);
  return name;
}

// The rows of `projection`'s current layout, with their checkpoints.
std::map<std::string, Position> layout_rows(ProjectionStore& store, const std::string& projection,
                                            int& count) {
  count = stored_partition_count(store, projection);
  std::map<std::string, Position> rows;
  bool registered = false;
  for (const auto& record : store.list()) {
    if (record.name == projection) registered = true;
    if (count == 1 && record.name == projection) rows.emplace(record.name, record.checkpoint);
    if (const auto part = parse_partition_name(record.name);
        count > 1 && part && part->projection == projection) {
      rows.emplace(record.name, record.checkpoint);
    }
  }
  if (!registered) {
    throw NotFoundError("projection '" + projection +
                        "' is not registered (ProjectionStore::prepare() registers it)");
  }
  return rows;
}

std::string default_owner() { return "annals-repartition:" + std::to_string(::getpid()); }

// The leases of every row of the current layout, taken for the procedure.
struct Fence {
  std::vector<Lease> leases;
  std::map<std::string, Position> rows;
  int count = 1;
};

// Why a row's lease could not be taken: who holds it.
std::string still_held(ProjectionStore& store, const std::string& row,
                       const std::string& projection) {
  std::string holder = "another runner";
  for (const auto& record : store.list()) {
    if (record.name == row && record.owner) holder = "'" + *record.owner + "'";
  }
  return "projection row '" + row + "' is still held by " + holder + ": stop the runners of '" +
         projection + "' first";
}

// Why repartition_aligned() refuses: two rows at different positions.
std::string not_aligned(const std::string& projection, const std::string& first, Position at,
                        const std::string& row, Position checkpoint) {
  return "the partitions of '" + projection + "' are not at one position ('" + first + "' at " +
         at.to_string() + ", '" + row + "' at " + checkpoint.to_string() +
         "): let its runners catch up and stop them while live, or use repartition() with the "
         "projection's code, which applies the missing events";
}

void release_all(ProjectionStore& store, const std::vector<Lease>& leases) noexcept {
  for (const auto& lease : leases) {
    try {
      store.release(lease);
    } catch (const std::exception& e) {
      logger()->warn("annals: could not release the lease of {}: {}", lease.projection, e.what());
    }
  }
}

Fence take_all(ProjectionStore& store, const std::string& projection,
               const RepartitionOptions& options) {
  Fence fence;
  fence.rows = layout_rows(store, projection, fence.count);
  const auto deadline = std::chrono::steady_clock::now() + options.wait;
  try {
    for (const auto& [name, checkpoint] : fence.rows) {
      while (true) {
        if (auto lease = store.try_acquire(name, options.owner, options.lease_ttl)) {
          fence.leases.push_back(std::move(*lease));
          break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          throw UnavailableError(still_held(store, name, projection));
        }
        // Waiting for a runner to stop or its lease to lapse: an operator's wait, not a
        // synchronization between threads of this process.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    // The checkpoints as of now, under the leases.
    for (auto& [name, checkpoint] : fence.rows) checkpoint = store.checkpoint(name);
  } catch (...) {
    release_all(store, fence.leases);
    throw;
  }
  return fence;
}

void release_all(ProjectionStore& store, const Fence& fence) noexcept {
  release_all(store, fence.leases);
}

RepartitionOptions with_defaults(RepartitionOptions options) {
  if (options.owner.empty()) options.owner = default_owner();
  if (options.lease_ttl.count() <= 0 || options.wait.count() < 0 || options.batch_size == 0) {
    throw InvalidArgumentError(
        "invalid RepartitionOptions: lease_ttl and batch_size must be positive, wait must not be "
        "negative");
  }
  return options;
}

Lease& lease_of(Fence& fence, const std::string& name) {
  for (auto& lease : fence.leases) {
    if (lease.projection == name) return lease;
  }
  throw InternalError("no lease taken for '" + name + "'");
}

// Applies the events of partition `index` of `count` (every event when count is 1) after
// `from` up to `to` under `lease`, in batches that commit with their checkpoints; the last one
// at `to`.
void catch_up(EventReader& events, ProjectionStore& store, Projection& projection,
              const Lease& lease, int index, int count, Position from, Position to,
              std::size_t batch_size) {
  Position at = from;
  while (at < to) {
    ReadAllOptions read{.after = at, .max_count = batch_size, .filter = projection.filter()};
    auto page = events.read_all(read);
    const bool full = page.size() >= batch_size;
    std::erase_if(page, [&](const RecordedEvent& e) { return e.position > to; });
    const Position through =
        page.empty() || !full || page.size() < batch_size ? to : page.back().position;
    auto batch = store.begin(lease, at);
    for (const auto& event : page) {
      if (count > 1 && partition_of(event.stream_id.value(), count) != index) continue;
      try {
        projection.apply(event, *batch);
      } catch (const Error&) {
        throw;
      } catch (const std::exception& e) {
        throw InvalidArgumentError("projection '" + projection.name() + "': event " +
                                   event.id.to_string() + " at " + event.position.to_string() +
                                   " failed while bringing '" + lease.projection +
                                   "' to a common position: " + e.what());
      }
    }
    batch->commit(through);
    at = through;
  }
}

}  // namespace

std::uint64_t fnv1a_64(std::string_view bytes) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

int partition_of(std::string_view stream_id, int count) {
  check_count(count);
  return static_cast<int>(fnv1a_64(stream_id) % static_cast<std::uint64_t>(count));
}

std::string partition_name(const std::string& projection, int index, int count) {
  validate_projection_name(projection);
  check_count(count);
  if (index < 0 || index >= count) {
    throw InvalidArgumentError("invalid partition index " + std::to_string(index) + " of " +
                               std::to_string(count) + " partitions");
  }
  return validated(projection + std::string(kPartPrefix) + std::to_string(index) +
                   std::string(kOf) + std::to_string(count));
}

std::string seat_name(const std::string& projection, int index) {
  validate_projection_name(projection);
  check_count(index + 1);
  return validated(projection + std::string(kSeatPrefix) + std::to_string(index));
}

std::optional<PartitionName> parse_partition_name(std::string_view name) {
  const auto part = name.rfind(kPartPrefix);
  if (part == std::string_view::npos || part == 0) return {};
  const auto rest = name.substr(part + kPartPrefix.size());
  const auto of = rest.find(kOf);
  if (of == std::string_view::npos) return {};
  const auto index = parse_number(rest.substr(0, of));
  const auto count = parse_number(rest.substr(of + kOf.size()));
  if (!index || !count || *count < 1 || *count > kMaxPartitions || *index >= *count) return {};
  return PartitionName{
      .projection = std::string(name.substr(0, part)), .index = *index, .count = *count};
}

std::optional<std::string> parse_seat_name(std::string_view name) {
  const auto seat = name.rfind(kSeatPrefix);
  if (seat == std::string_view::npos || seat == 0) return {};
  const auto index = parse_number(name.substr(seat + kSeatPrefix.size()));
  if (!index || *index >= kMaxPartitions) return {};
  return std::string(name.substr(0, seat));
}

int stored_partition_count(ProjectionStore& store, const std::string& projection) {
  int count = 1;
  for (const auto& record : store.list()) {
    const auto part = parse_partition_name(record.name);
    if (!part || part->projection != projection) continue;
    if (count != 1 && count != part->count) {
      throw CorruptionError("projection '" + projection + "' has partition rows of " +
                            std::to_string(count) + " and of " + std::to_string(part->count) +
                            " partitions");
    }
    count = part->count;
  }
  return count;
}

namespace {

// Step 3 of repartition(): every row of `fence` is at `at`; replace them by `count` partitions
// there, in one unit of work.
void commit_new_layout(ProjectionStore& store, const std::string& name, const Fence& fence,
                       int count, Position at) {
  LayoutChange change;
  change.held = fence.leases;
  change.at = at;
  for (const auto& [row, checkpoint] : fence.rows) {
    if (row != name) change.remove.push_back(row);
  }
  if (count == 1) {
    change.place.push_back(name);
  } else {
    if (fence.count == 1) change.fence.push_back(name);
    for (int k = 0; k < count; ++k) change.place.push_back(partition_name(name, k, count));
    // Rows of the same name (a repartition to the same count) are placed, not removed.
    std::erase_if(change.remove, [&](const std::string& row) {
      return std::find(change.place.begin(), change.place.end(), row) != change.place.end();
    });
  }
  const auto& first = fence.leases.front();
  auto batch = store.begin(first, fence.rows.at(first.projection));
  batch->commit_layout(change);
}

}  // namespace

RepartitionResult repartition(EventReader& events, ProjectionStore& store, Projection& projection,
                              int count, RepartitionOptions options) {
  check_count(count);
  options = with_defaults(std::move(options));
  const auto name = projection.name();
  validate_projection_name(name);
  auto fence = take_all(store, name, options);
  RepartitionResult result{.from = fence.count, .to = count, .at = Position::start()};
  try {
    for (const auto& [row, checkpoint] : fence.rows) result.at = std::max(result.at, checkpoint);
    // Every old partition to the common position: the events of its streams up to there.
    for (const auto& [row, checkpoint] : fence.rows) {
      if (checkpoint == result.at) continue;
      const auto part = parse_partition_name(row);
      catch_up(events, store, projection, lease_of(fence, row), part ? part->index : 0, fence.count,
               checkpoint, result.at, options.batch_size);
      fence.rows[row] = result.at;
    }
    commit_new_layout(store, name, fence, count, result.at);
  } catch (...) {
    release_all(store, fence);
    throw;
  }
  logger()->info("annals: projection {}: repartitioned from {} to {} partition(s) at {}", name,
                 result.from, result.to, result.at.to_string());
  return result;
}

RepartitionResult repartition_aligned(ProjectionStore& store, const std::string& projection,
                                      int count, RepartitionOptions options) {
  check_count(count);
  options = with_defaults(std::move(options));
  validate_projection_name(projection);
  auto fence = take_all(store, projection, options);
  RepartitionResult result{.from = fence.count, .to = count, .at = Position::start()};
  try {
    result.at = fence.rows.begin()->second;
    for (const auto& [row, checkpoint] : fence.rows) {
      if (checkpoint != result.at) {
        throw InvalidArgumentError(
            not_aligned(projection, fence.rows.begin()->first, result.at, row, checkpoint));
      }
    }
    commit_new_layout(store, projection, fence, count, result.at);
  } catch (...) {
    release_all(store, fence);
    throw;
  }
  logger()->info("annals: projection {}: repartitioned from {} to {} partition(s) at {}",
                 projection, result.from, result.to, result.at.to_string());
  return result;
}

void rebuild_partitions(ProjectionStore& store, Projection& projection,
                        RepartitionOptions options) {
  options = with_defaults(std::move(options));
  const auto name = projection.name();
  validate_projection_name(name);
  auto fence = take_all(store, name, options);
  try {
    if (fence.count == 1) {
      throw InvalidArgumentError("projection '" + name +
                                 "' is not partitioned: use ProjectionRunner::rebuild()");
    }
    LayoutChange change;
    change.held = fence.leases;
    change.at = Position::start();
    for (const auto& [row, checkpoint] : fence.rows) change.place.push_back(row);
    const auto& first = fence.leases.front();
    auto batch = store.begin(first, fence.rows.at(first.projection));
    projection.reset(*batch);
    batch->commit_layout(change);
  } catch (...) {
    release_all(store, fence);
    throw;
  }
  logger()->info("annals: projection {}: reset for a rebuild of its {} partitions", name,
                 fence.count);
}

}  // namespace annals::projections
