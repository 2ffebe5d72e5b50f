#include "projection_kit.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "annals/projections/runner.hpp"

namespace annals::bench {

std::vector<projections::ReadModelMigration> CountingReadModel::migrations() const {
  return {{"create-" + table_, "CREATE TABLE IF NOT EXISTS " + table_ +
                                   " (stream_id text PRIMARY KEY, events bigint NOT NULL)"}};
}

void CountingReadModel::handle(const RecordedEvent& event, projections::ReadModel& db) {
  db.increment(table_, {{"stream_id", event.stream_id.value()}}, "events", 1);
}

double time_catch_up(EventStore& store, projections::ProjectionStore& projection_store,
                     std::shared_ptr<projections::Projection> projection, Position target,
                     std::size_t batch_size, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const std::string name = projection->name();
  projections::ProjectionRunner runner(store, projection_store,
                                       {.poll_interval = std::chrono::milliseconds(100)});
  runner.add(std::move(projection), {.batch_size = batch_size});  // prepares: not timed
  const auto start = Clock::now();
  runner.start();
  const bool reached = runner.wait_for(name, target, timeout);
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  const auto status = runner.status(name);
  runner.stop();
  if (!reached) {
    throw std::runtime_error("projection " + name + " did not catch up (state " +
                             to_string(status.state) + ", " +
                             status.last_error.value_or("no error") + ")");
  }
  return elapsed.count();
}

Position nth_position(PgConnection& connection, std::uint64_t n) {
  const auto rows = connection.query(
      "SELECT transaction_id::text, global_position FROM annals.events e "
      "ORDER BY e.transaction_id, e.global_position OFFSET " +
      std::to_string(n - 1) + " LIMIT 1");
  if (rows.rows() != 1) {
    throw std::runtime_error("the log has fewer than " + std::to_string(n) + " events");
  }
  return Position(std::stoull(rows.text(0, 0)), std::stoll(rows.text(0, 1)));
}

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace annals::bench
