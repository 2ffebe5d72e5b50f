// A ReadModelProjection run by a ProjectionRunner over the PostgreSQL event store: the read
// model equals a fresh computation from the log, after catch-up, after live events and after a
// rebuild; and a rough catch-up rate (events/s), printed for docs/performance.md.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "read_model_support.hpp"
#include "test_database.hpp"

namespace annals::projections {
namespace {

using testing::Admin;
using testing::random_hex;

// Balances per account, and the number of deposits and withdrawals, for one stream category.
class Balances final : public ReadModelProjection {
 public:
  explicit Balances(std::string category)
      : category_(std::move(category)), table_(category_ + "_balances") {}

  std::string name() const override { return "balances_" + category_; }
  EventFilter filter() const override { return {.category = category_, .event_types = {}}; }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create_balances",
             "CREATE TABLE " + table_ +
                 " (account_id text PRIMARY KEY, owner text, balance bigint NOT NULL DEFAULT 0,"
                 "  movements bigint NOT NULL DEFAULT 0)"}};
  }
  std::vector<std::string> tables() const override { return {table_}; }

  void handle(const RecordedEvent& e, ReadModel& db) override {
    const nlohmann::json key = {{"account_id", e.stream_id.value()}};
    if (e.type == "AccountOpened") {
      db.upsert(table_, key, {{"owner", e.data.at("owner")}});
    } else if (e.type == "MoneyDeposited") {
      db.increment(table_, key, "balance", e.data.at("amount").get<std::int64_t>());
    } else if (e.type == "MoneyWithdrawn") {
      db.increment(table_, key, "balance", -e.data.at("amount").get<std::int64_t>());
    }
  }

  const std::string& table() const { return table_; }

 private:
  std::string category_;
  std::string table_;
};

struct Row {
  std::string owner;
  std::int64_t balance = 0;
  friend bool operator==(const Row&, const Row&) = default;
};

// A fresh computation from the log: every event of the category, folded in log order.
std::map<std::string, Row> computed(EventStore& events, const std::string& category) {
  std::map<std::string, Row> rows;
  ReadAllOptions options;
  options.filter.category = category;
  options.max_count = 5000;
  for (;;) {
    const auto page = events.read_all(options);
    for (const auto& e : page) {
      auto& row = rows[e.stream_id.value()];
      if (e.type == "AccountOpened") row.owner = e.data.at("owner").get<std::string>();
      if (e.type == "MoneyDeposited") row.balance += e.data.at("amount").get<std::int64_t>();
      if (e.type == "MoneyWithdrawn") row.balance -= e.data.at("amount").get<std::int64_t>();
    }
    if (page.size() < options.max_count) break;
    options.after = page.back().position;
  }
  return rows;
}

std::map<std::string, Row> stored(Admin& admin, const std::string& table) {
  std::map<std::string, Row> rows;
  for (const auto& r : admin.query("SELECT account_id, owner, balance FROM " + table)) {
    rows[r[0].c_str()] = Row{r[1].is_null() ? "" : r[1].c_str(), r[2].as<std::int64_t>()};
  }
  return rows;
}

// Appends `accounts` streams of `per_account` events each (one append per stream); returns the
// position of the last append.
Position append_accounts(EventStore& events, const std::string& category, int first, int accounts,
                         int per_account) {
  Position last;
  for (int a = first; a < first + accounts; ++a) {
    std::vector<NewEvent> batch;
    batch.push_back({.id = std::nullopt,
                     .type = "AccountOpened",
                     .schema_version = 1,
                     .data = {{"owner", "owner 'O\"Brien'; #" + std::to_string(a)}},
                     .metadata = nlohmann::json::object()});
    for (int i = 1; i < per_account; ++i) {
      const bool deposit = i % 3 != 0;
      batch.push_back({.id = std::nullopt,
                       .type = deposit ? "MoneyDeposited" : "MoneyWithdrawn",
                       .schema_version = 1,
                       .data = {{"amount", (a * 7 + i * 13) % 100 + 1}},
                       .metadata = nlohmann::json::object()});
    }
    last = events
               .append(StreamId(category + "-" + std::to_string(a)), ExpectedVersion::any(),
                       std::move(batch))
               .position;
  }
  return last;
}

class ReadModelRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = annals::testing::test_database_url();
    events_ = postgres::make_postgres_event_store({.connection_string = url_});
    store_ = make_postgres_projection_store({.connection_string = url_});
    category_ = "acct" + random_hex(10);
  }

  std::string url_;
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<ProjectionStore> store_;
  std::string category_;
  Admin admin_;
};

TEST_F(ReadModelRunnerTest, CatchUpLiveAndRebuildEqualAFreshComputation) {
  // 200 accounts x 100 events = 20,000 events of backlog before the runner starts.
  constexpr int kAccounts = 200;
  constexpr int kPerAccount = 100;
  const auto backlog_end = append_accounts(*events_, category_, 0, kAccounts, kPerAccount);
  auto balances = std::make_shared<Balances>(category_);

  ProjectionRunner runner(*events_, *store_, {.owner = "runner-test"});
  runner.add(balances, {.batch_size = 500});
  const auto started = std::chrono::steady_clock::now();
  runner.start();
  ASSERT_TRUE(runner.wait_for(balances->name(), backlog_end, std::chrono::minutes(5)))
      << "catch-up did not finish";
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double rate = kAccounts * kPerAccount / seconds;
  std::cout << "[ figures  ] catch-up into a PostgreSQL read model: " << kAccounts * kPerAccount
            << " events in " << seconds << " s = " << static_cast<std::int64_t>(rate)
            << " events/s\n";
  RecordProperty("catch_up_events_per_second", static_cast<int>(rate));
  ASSERT_TRUE(wait_for_checkpoint(*store_, balances->name(), backlog_end, std::chrono::minutes(1)));
  EXPECT_EQ(stored(admin_, balances->table()), computed(*events_, category_));

  // Live: new accounts and more events on old ones while the runner follows.
  append_accounts(*events_, category_, kAccounts - 10, 20, 10);
  const auto live_end = append_accounts(*events_, category_, 0, 5, 3);
  ASSERT_TRUE(runner.wait_for(balances->name(), live_end, std::chrono::minutes(1)));
  ASSERT_TRUE(wait_for_checkpoint(*store_, balances->name(), live_end, std::chrono::minutes(1)));
  const auto expected = computed(*events_, category_);
  EXPECT_EQ(expected.size(), static_cast<std::size_t>(kAccounts + 10));
  EXPECT_EQ(stored(admin_, balances->table()), expected);

  // Rebuild, asked for through the runner: reset the table and checkpoint, replay, same result.
  admin_.query("UPDATE " + balances->table() + " SET balance = -1");  // damage to be repaired
  const auto request = runner.rebuild(balances->name());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  std::optional<RebuildRequest> seen;
  for (;;) {
    seen = store_->rebuild_request(request.id);
    ASSERT_TRUE(seen.has_value());
    if (seen->state == RebuildState::kDone || seen->state == RebuildState::kFailed) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the rebuild never finished";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a state, not a sync
  }
  EXPECT_EQ(seen->state, RebuildState::kDone) << seen->message.value_or("");
  ASSERT_TRUE(wait_for_checkpoint(*store_, balances->name(), live_end, std::chrono::minutes(1)));
  EXPECT_EQ(stored(admin_, balances->table()), expected);
  runner.stop();
}

// Where catch-up time goes: reading the log, and applying the same events in batches of 500
// straight through the store (no runner). Prints figures; asserts only correctness.
TEST_F(ReadModelRunnerTest, CatchUpCostBreakdown) {
  constexpr int kAccounts = 200;
  constexpr int kPerAccount = 100;
  append_accounts(*events_, category_, 0, kAccounts, kPerAccount);

  // A short page is not the end of the log: while another session's transaction is still open
  // the store stops before it (never skipping), and head_position() is the settled head, which
  // can be behind these appends for that long. So read until every appended event has arrived.
  constexpr auto kTotal = static_cast<std::size_t>(kAccounts * kPerAccount);
  auto started = std::chrono::steady_clock::now();
  const auto deadline = started + std::chrono::seconds(60);
  std::vector<RecordedEvent> log;
  ReadAllOptions options;
  options.filter.category = category_;
  options.max_count = 500;
  while (log.size() < kTotal) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << log.size() << " of " << kTotal << " events arrived";
    auto page = events_->read_all(options);
    if (page.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    log.insert(log.end(), page.begin(), page.end());
    options.after = page.back().position;
  }
  const double read_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(log.size(), kTotal);

  Balances balances(category_);
  store_->prepare(balances);
  const auto lease = store_->try_acquire(balances.name(), "bench", std::chrono::minutes(5));
  ASSERT_TRUE(lease.has_value());
  started = std::chrono::steady_clock::now();
  Position at;
  for (std::size_t i = 0; i < log.size(); i += 500) {
    auto batch = store_->begin(*lease, at);
    const auto end = std::min(log.size(), i + 500);
    for (std::size_t k = i; k < end; ++k) balances.apply(log[k], *batch);
    batch->commit(log[end - 1].position);
    at = log[end - 1].position;
  }
  const double apply_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto n = static_cast<double>(log.size());
  EXPECT_EQ(stored(admin_, balances.table()), computed(*events_, category_));

  // The same again into a fresh table, with pipelined batches (as the runner applies them).
  Balances pipelined(category_ + "p");
  store_->prepare(pipelined);
  const auto lease2 = store_->try_acquire(pipelined.name(), "bench", std::chrono::minutes(5));
  ASSERT_TRUE(lease2.has_value());
  started = std::chrono::steady_clock::now();
  at = Position();
  for (std::size_t i = 0; i < log.size(); i += 500) {
    auto batch = store_->begin(*lease2, at);
    batch->set_pipelined(true);
    const auto end = std::min(log.size(), i + 500);
    for (std::size_t k = i; k < end; ++k) pipelined.apply(log[k], *batch);
    batch->commit(log[end - 1].position);
    at = log[end - 1].position;
  }
  const double pipelined_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "[ figures  ] read_all of " << log.size()
            << " events (pages of 500): " << static_cast<std::int64_t>(n / read_seconds)
            << " events/s; applied through the "
            << "store in batches of 500 (no runner): "
            << static_cast<std::int64_t>(n / apply_seconds) << " events/s unpipelined, "
            << static_cast<std::int64_t>(n / pipelined_seconds) << " events/s pipelined\n";
  EXPECT_EQ(stored(admin_, pipelined.table()), computed(*events_, category_));
}

// A poison event whose write fails only when the pipelined batch is sent (a CHECK constraint
// at commit, or at a later event's exec()): the runner rolls the batch back, applies the page
// again unpipelined, and the failure policy applies to exactly that event: max_attempts
// attempts, then parked; everything else applied exactly once.
TEST_F(ReadModelRunnerTest, AFailingQueuedWriteIsIsolatedRetriedAndParkedExactly) {
  const auto table = "poison_" + random_hex(10);
  std::map<std::string, int> handled;  // event id -> handle() calls (the runner's thread only)
  auto projection = std::make_shared<testing::LambdaReadModel>(
      "poison_" + category_, [&](const RecordedEvent& e, ReadModel& db) {
        ++handled[e.id.to_string()];
        const nlohmann::json key = {{"account_id", e.stream_id.value()}};
        if (e.type == "AccountOpened") {
          db.upsert(table, key, {{"owner", e.data.at("owner")}});
        } else if (e.type == "Audited") {
          static_cast<void>(db.exec("SELECT count(*) FROM " + table));
        } else {
          db.increment(table, key, "balance", e.data.at("amount").get<std::int64_t>());
        }
      });
  projection->filter_ = {.category = category_, .event_types = {}};
  projection->migrations_ = {
      {"0001", "CREATE TABLE " + table +
                   " (account_id text PRIMARY KEY, owner text CHECK (owner <> 'poison'),"
                   "  balance bigint NOT NULL DEFAULT 0)"}};
  const auto stream = [&](int a) { return StreamId(category_ + "-" + std::to_string(a)); };
  const auto event = [](const char* type, nlohmann::json data) {
    return NewEvent{.id = std::nullopt,
                    .type = type,
                    .schema_version = 1,
                    .data = std::move(data),
                    .metadata = nlohmann::json::object()};
  };
  // 12 accounts of 5 events (pages of 25). Accounts 5 and 11 are opened by "poison" (the
  // upsert breaks the CHECK constraint only when sent): the first poison's write is sent by
  // the exec() of a later event of its page (account 6's "Audited"), the second one's by the
  // commit of the last page.
  Position last;
  for (int a = 0; a < 12; ++a) {
    std::vector<NewEvent> batch;
    const bool bad = a == 5 || a == 11;
    batch.push_back(event("AccountOpened", {{"owner", bad ? "poison" : "o" + std::to_string(a)}}));
    for (int i = 1; i < 5; ++i) batch.push_back(event("MoneyDeposited", {{"amount", a + i}}));
    if (a == 6) batch.insert(batch.begin() + 1, event("Audited", nlohmann::json::object()));
    last = events_->append(stream(a), ExpectedVersion::any(), std::move(batch)).position;
  }
  std::vector<EventId> poison;
  for (const int a : {5, 11}) poison.push_back(events_->read_stream(stream(a)).at(0).id);

  ProjectionRunner runner(*events_, *store_, {.owner = "poison-test"});
  runner.add(projection, {.batch_size = 25,
                          .max_attempts = 3,
                          .initial_backoff = std::chrono::milliseconds(1),
                          .max_backoff = std::chrono::milliseconds(2),
                          .on_failure = OnFailure::kDeadLetter});
  runner.start();
  ASSERT_TRUE(runner.wait_for(projection->name(), last, std::chrono::minutes(1)));
  ASSERT_TRUE(wait_for_checkpoint(*store_, projection->name(), last, std::chrono::minutes(1)));
  const auto status = runner.status(projection->name());
  runner.stop();

  const auto letters = store_->list_dead_letters({.projection = projection->name()});
  ASSERT_EQ(letters.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(letters[i].event.id, poison[i]);
    EXPECT_EQ(letters[i].attempts, 3);
    EXPECT_THAT(letters[i].error, ::testing::HasSubstr("violates a constraint of the read model"));
    // Once in the pipelined batch, then 3 attempts unpipelined.
    EXPECT_EQ(handled[poison[i].to_string()], 4);
  }
  EXPECT_EQ(status.errors, 6U);  // a pipelined failure blames nobody
  EXPECT_EQ(status.dead_letters, 2U);

  // Exactly once: the table equals a fresh computation without the parked event.
  std::map<std::string, std::pair<std::string, std::int64_t>> expected;
  ReadAllOptions read;
  read.filter.category = category_;
  read.max_count = 1000;
  for (const auto& e : events_->read_all(read)) {
    if (e.id == poison[0] || e.id == poison[1]) continue;
    auto& row = expected[e.stream_id.value()];
    if (e.type == "AccountOpened") row.first = e.data.at("owner").get<std::string>();
    if (e.type == "MoneyDeposited") row.second += e.data.at("amount").get<std::int64_t>();
  }
  std::map<std::string, std::pair<std::string, std::int64_t>> actual;
  for (const auto& r :
       admin_.query("SELECT account_id, coalesce(owner, ''), balance FROM " + table)) {
    actual[r[0].c_str()] = {r[1].c_str(), r[2].as<std::int64_t>()};
  }
  EXPECT_EQ(actual, expected);
}

}  // namespace
}  // namespace annals::projections
