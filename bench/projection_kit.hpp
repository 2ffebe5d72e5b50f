// annals-bench: the projections and timing helpers that the projection figures
// (projections_bench.cpp) and the long haul (long_haul.cpp) share.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "pg.hpp"

namespace annals::bench {

/// Applies nothing: what the runner and the store cost on their own.
class NoopProjection final : public projections::InProcessProjection {
 public:
  explicit NoopProjection(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void handle(const RecordedEvent& /*event*/) override {}

 private:
  std::string name_;
};

/// Counts events per stream in a table of its own: one ReadModel::increment (one upsert
/// statement) per event, committed with the checkpoint per batch.
class CountingReadModel final : public projections::ReadModelProjection {
 public:
  CountingReadModel(std::string name, std::string table, EventFilter filter = {})
      : name_(std::move(name)), table_(std::move(table)), filter_(std::move(filter)) {}
  std::string name() const override { return name_; }
  EventFilter filter() const override { return filter_; }
  std::vector<projections::ReadModelMigration> migrations() const override;
  std::vector<std::string> tables() const override { return {table_}; }
  void handle(const RecordedEvent& event, projections::ReadModel& db) override;

 private:
  std::string name_;
  std::string table_;
  EventFilter filter_;
};

/// Seconds for a new projection to apply the log's events up to `target`: from the runner's
/// start() to its wait_for() returning (the batch holding `target` committed). add(), which
/// prepares the projection and its tables, is not timed. Throws std::runtime_error when the
/// projection does not get there within `timeout` (naming its state and last error).
double time_catch_up(EventStore& store, projections::ProjectionStore& projection_store,
                     std::shared_ptr<projections::Projection> projection, Position target,
                     std::size_t batch_size,
                     std::chrono::milliseconds timeout = std::chrono::minutes(10));

/// The position of event number `n` (1-based) of the global log, in log order. Throws
/// std::runtime_error when the log holds fewer events. Cost: an index scan of n entries.
[[nodiscard]] Position nth_position(PgConnection& connection, std::uint64_t n);

/// Quantile q (0..1) of `sorted` (ascending), nearest rank; 0 for no values.
[[nodiscard]] double quantile(const std::vector<double>& sorted, double q);

}  // namespace annals::bench
