// The daily totals cannot overflow: a sum that would leave 64 bits refuses the event that
// causes it (parked as a dead letter with a message naming the day, the total and the amount),
// and the projection goes on with the next events. The document read models on both stores
// (in memory and PostgreSQL), in process, with events written straight to the store (the
// service never accepts amounts this large; another tool or an older version might have
// written them).
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/projections/app.hpp"
#include "annals/projections/postgres/open.hpp"
#include "annals/projections/runner.hpp"
#include "document_read_models.hpp"
#include "test_database.hpp"

namespace {

namespace projections = annals::projections;
using nlohmann::json;

constexpr std::int64_t kLargest = std::numeric_limits<std::int64_t>::max();

annals::NewEvent deposit(std::int64_t amount) {
  return {.id = std::nullopt,
          .type = std::string(bank::MoneyDeposited::kTypeName),
          .schema_version = 1,
          .data = json{{"amount", amount}},
          .metadata = json::object()};
}

annals::NewEvent opened(const std::string& owner) {
  return {.id = std::nullopt,
          .type = std::string(bank::AccountOpened::kTypeName),
          .schema_version = 1,
          .data = json{{"owner", owner}},
          .metadata = json::object()};
}

// Two accounts (so that no balance overflows), one transaction (so that every event has the
// same recorded_at, hence the same day): kLargest - 10 into the first, then 100 (which would
// overflow the day's deposits) and 5 (which fits) into the second.
annals::Position append_overflowing_day(annals::EventStore& store) {
  const std::string big = annals::testing::unique_stream("account");
  const std::string small = annals::testing::unique_stream("account");
  const auto results =
      store.append_multi({{.stream_id = annals::StreamId(big),
                           .expected = annals::ExpectedVersion::no_stream(),
                           .events = {opened("Big"), deposit(kLargest - 10)}},
                          {.stream_id = annals::StreamId(small),
                           .expected = annals::ExpectedVersion::no_stream(),
                           .events = {opened("Small"), deposit(100), deposit(5)}}});
  return results.back().position;
}

// Runs the bank's projections with the service's options in `app` and checks the outcome.
void expect_overflow_refused(annals::App& app) {
  bank::register_events(app.registry());
  auto models = bank::make_read_models(app.registry(), app.documents());
  auto& checkpoints = app.projection_store();
  auto& runner = app.runner();
  const annals::Position last = append_overflowing_day(app.events());
  for (const auto& projection : models.projections) {
    runner.add(projection, bank::bank_projection_options(projection->name()));
  }
  runner.start();
  const std::string name(bank::kDailyTotalsProjection);
  ASSERT_TRUE(runner.wait_for(name, last, std::chrono::seconds(60)))
      << "the daily totals did not get past the refused event";

  const auto days = models.queries->daily_totals();
  ASSERT_EQ(days.size(), 1U);
  EXPECT_EQ(days[0].deposited, kLargest - 10 + 5) << "the 100 must not be counted";
  EXPECT_EQ(days[0].deposits, 2);

  const auto letters =
      checkpoints.list_dead_letters({.projection = name, .state = std::nullopt, .max_count = 10});
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].event.data, (json{{"amount", 100}}));
  EXPECT_NE(letters[0].error.find("cannot add 100 to field \"deposited\" of document \"" +
                                  days[0].day + "\" holding " + std::to_string(kLargest - 10) +
                                  ": the sum is not a 64-bit integer"),
            std::string::npos)
      << letters[0].error;
  EXPECT_NE(letters[0].error.find(days[0].day), std::string::npos) << letters[0].error;

  // The projection is not stopped, and the other read models were not affected.
  for (const auto& status : runner.status()) {
    EXPECT_NE(status.state, projections::ProjectionState::kFailed) << status.name;
    if (status.name != name) {
      EXPECT_EQ(status.dead_letters, 0U) << status.name;
    }
  }
  runner.stop();
}

TEST(BankDailyTotalsTest, InMemoryTotalsRefuseAnOverflowingEventAndGoOn) {
  auto app = annals::open_in_memory({.runner = {.owner = "daily-totals-test"}});
  expect_overflow_refused(*app);
}

TEST(BankDailyTotalsTest, PostgresTotalsRefuseAnOverflowingEventAndGoOn) {
  auto app =
      annals::postgres::open(annals::testing::test_database_url(),
                             {.max_connections = 8, .runner = {.owner = "daily-totals-test"}});
  expect_overflow_refused(*app);
}

}  // namespace
