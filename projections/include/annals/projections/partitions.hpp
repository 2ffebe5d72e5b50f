// Partitioned projections (docs/scaling.md, "Partitioned projections"): one projection run as
// N partitions, each owning the streams whose id hashes to it, so that N runner processes on
// one or many machines share its work while each stream's events stay in order.
//
// The partition of a stream is a stable hash every client can compute:
//
//   partition_of(stream_id, N) = FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
//                                0x100000001b3) of the stream id's UTF-8 bytes, modulo N
//
// Each partition is a projection row of its own in the ProjectionStore, named
// "<name>.part-<k>-of-<N>" (k from 0), with its own checkpoint, lease and fencing token, so a
// partition's read-model writes commit with its own checkpoint (exactly once per partition).
// The projection's own row "<name>" stays registered (its setup and read-model migrations are
// recorded under it). Runners of a partitioned projection also hold one "<name>.runner-<k>"
// row each while they run (a seat): the number of seats held is the number of live runners,
// and each runner takes at most ceil(N / live runners) partitions.
//
// Switch it on with ProjectionOptions::partitions; change the count with repartition().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "annals/eventstore/event_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections {

/// Most partitions a projection may have.
inline constexpr int kMaxPartitions = 256;

/// FNV-1a 64 of `bytes`. Cost: one multiply per byte. Never throws.
[[nodiscard]] std::uint64_t fnv1a_64(std::string_view bytes) noexcept;

/// The partition (0 to count - 1) of the stream with id `stream_id`: fnv1a_64(stream_id) % count.
/// Throws: InvalidArgumentError unless 1 <= count <= kMaxPartitions.
[[nodiscard]] int partition_of(std::string_view stream_id, int count);

/// "<projection>.part-<index>-of-<count>". Throws: InvalidArgumentError for a bad projection
/// name (validate_projection_name), a count outside 1..kMaxPartitions, an index outside
/// 0..count-1, or a result longer than a projection name may be.
[[nodiscard]] std::string partition_name(const std::string& projection, int index, int count);

/// "<projection>.runner-<index>": a runner's seat in a partitioned projection.
/// Throws: as partition_name().
[[nodiscard]] std::string seat_name(const std::string& projection, int index);

/// A partition row's name taken apart.
struct PartitionName {
  std::string projection;
  int index = 0;
  int count = 0;
};

/// The parts of a partition row's name; empty for any other name. Never throws.
[[nodiscard]] std::optional<PartitionName> parse_partition_name(std::string_view name);
/// The projection whose seat row this is; empty for any other name. Never throws.
[[nodiscard]] std::optional<std::string> parse_seat_name(std::string_view name);

/// How many partitions `projection` has in `store`: the count of its partition rows, or 1
/// when it has none (it runs unpartitioned, or is not registered).
/// Throws: CorruptionError when rows of two different counts exist; the store's errors.
/// Cost: one ProjectionStore::list().
[[nodiscard]] int stored_partition_count(ProjectionStore& store, const std::string& projection);

/// Settings of repartition() and rebuild_partitions().
struct RepartitionOptions {
  /// The owner name of the leases the procedure takes. Default: "annals-repartition:<pid>".
  std::string owner;
  /// The leases' time to live: longer than the procedure takes (they are not renewed; a
  /// lapsed one taken by a runner refuses the change). Default 60 s.
  std::chrono::milliseconds lease_ttl{60'000};
  /// How long to wait for leases that runners still hold (stop the runners first). Default 0:
  /// fail at once.
  std::chrono::milliseconds wait{0};
  /// Most events per batch while bringing the partitions to a common position. Default 500.
  std::size_t batch_size = 500;
};

/// What repartition() did.
struct RepartitionResult {
  int from = 1;
  int to = 1;
  /// The common position every new partition starts at.
  Position at;
};

/// Changes the number of partitions of `projection` (prepared in `store` before) to `count`,
/// exactly, without a rebuild:
///  1. takes the lease of every current partition (or of the projection's own row when it is
///     unpartitioned), which fences any runner still running one;
///  2. brings every partition to one common position, the highest of their checkpoints, by
///     applying the events of its streams up to there (each batch commits with its checkpoint);
///  3. in one unit of work removes the old partition rows and creates the new ones, each with
///     its checkpoint at that position (ProjectionStore batches' commit_layout()).
/// Stop the projection's runners before (their leases must be free; see `options.wait`), and
/// start them again after: they run the new partitions, whatever their
/// ProjectionOptions::partitions says. count 1 makes the projection unpartitioned again.
/// Throws: InvalidArgumentError (count outside 1..kMaxPartitions, open dead letters on a
/// partition: retry or skip them first, an event that fails to apply); UnavailableError when a
/// lease is still held after `options.wait` (the message names it and its owner); NotFoundError
/// for an unprepared projection; OwnershipLostError when another process interfered; the
/// stores' errors. Nothing of step 3 is stored unless all of it is.
RepartitionResult repartition(EventReader& events, ProjectionStore& store, Projection& projection,
                              int count, RepartitionOptions options = {});

/// repartition() for a caller without the projection's code (the `annals projections
/// repartition` command): the same steps, except that step 2 must have nothing to do. Every
/// current partition must already be at one position, as they are after the runners were
/// stopped while live with no appends meanwhile (each checkpoints the head it reached).
/// Throws: InvalidArgumentError when the checkpoints differ (the message names two of them),
/// otherwise as repartition().
RepartitionResult repartition_aligned(ProjectionStore& store, const std::string& projection,
                                      int count, RepartitionOptions options = {});

/// Rebuilds a partitioned projection from the start of the log: takes every partition's
/// lease as repartition() does, then in one unit of work resets the read model
/// (Projection::reset) and puts every partition's checkpoint at the start. Runners started
/// afterwards replay it. For an unpartitioned projection use ProjectionRunner::rebuild().
/// Throws: as repartition().
void rebuild_partitions(ProjectionStore& store, Projection& projection,
                        RepartitionOptions options = {});

}  // namespace annals::projections
