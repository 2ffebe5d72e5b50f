// Inline read-model projections (make_inline_projections_store, sql/0016): applied in the
// append's transaction, moved between inline and asynchronous without a rebuild, never applying
// an event twice or missing one, never letting a checkpoint pass an event that is not yet
// visible, and failing the append as a whole when a handler throws.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/inline_projections.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "read_model_support.hpp"
#include "test_database.hpp"

namespace annals::projections {
namespace {

using testing::Admin;
using testing::deposited;
using testing::random_hex;

// Balances per account, plus what proves exactly-once and per-stream order: every event id
// counted in `<category>_applied` (must end at 1 each), and `out_of_order` counting events
// applied at or below a version already applied to their stream (must stay 0).
class Ledger final : public ReadModelProjection {
 public:
  explicit Ledger(std::string category)
      : category_(std::move(category)),
        balances_(category_ + "_balances"),
        applied_(category_ + "_applied") {}

  std::string name() const override { return "ledger_" + category_; }
  EventFilter filter() const override { return {.category = category_, .event_types = {}}; }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create",
             "CREATE TABLE " + balances_ +
                 " (account_id text PRIMARY KEY, owner text, balance bigint NOT NULL DEFAULT 0,"
                 "  last_version bigint, out_of_order bigint NOT NULL DEFAULT 0);"
                 "CREATE TABLE " +
                 applied_ + " (event_id text PRIMARY KEY, n bigint NOT NULL)"}};
  }
  std::vector<std::string> tables() const override { return {balances_, applied_}; }

  void handle(const RecordedEvent& e, ReadModel& db) override {
    if (e.type == "Refused") throw std::runtime_error("refused event " + e.id.to_string());
    const Columns key = {{"account_id", e.stream_id.value()}};
    const auto seen = db.exec("SELECT last_version FROM " + balances_ + " WHERE account_id = $1",
                              {e.stream_id.value()});
    if (!seen.empty() && !seen[0]["last_version"].is_null() &&
        seen[0]["last_version"].get<std::int64_t>() >= e.version) {
      db.increment(balances_, key, "out_of_order", 1);
    }
    db.upsert(balances_, key, {{"last_version", e.version}});
    if (e.type == "AccountOpened") db.upsert(balances_, key, {{"owner", e.data.at("owner")}});
    if (e.type == "MoneyDeposited") {
      db.increment(balances_, key, "balance", e.data.at("amount").get<std::int64_t>());
    }
    db.increment(applied_, {{"event_id", e.id.to_string()}}, "n", 1);
  }

  const std::string& balances() const { return balances_; }
  const std::string& applied() const { return applied_; }

 private:
  std::string category_;
  std::string balances_;
  std::string applied_;
};

struct Row {
  std::string owner;
  std::int64_t balance = 0;
  std::int64_t last_version = 0;
  std::int64_t out_of_order = 0;
  friend bool operator==(const Row&, const Row&) = default;
};

struct Computed {
  std::map<std::string, Row> rows;
  std::size_t events = 0;
};

// A fresh computation from the log (every event of the category, folded in log order).
// The category's events up to `last` (the newest committed event: Admin::committed_head),
// waiting (bounded) while a transaction open elsewhere in the cluster holds the log back.
Computed computed(EventStore& events, const std::string& category, Position last) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (events.head_position() < last && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Computed out;
  ReadAllOptions options;
  options.filter.category = category;
  options.max_count = 1000;
  for (;;) {
    const auto page = events.read_all(options);
    for (const auto& e : page) {
      auto& row = out.rows[e.stream_id.value()];
      row.last_version = e.version;
      if (e.type == "AccountOpened") row.owner = e.data.at("owner").get<std::string>();
      if (e.type == "MoneyDeposited") row.balance += e.data.at("amount").get<std::int64_t>();
      ++out.events;
    }
    if (page.size() < options.max_count) break;
    options.after = page.back().position;
  }
  return out;
}

std::map<std::string, Row> stored(Admin& admin, const Ledger& ledger) {
  std::map<std::string, Row> rows;
  for (const auto& r : admin.query("SELECT account_id, owner, balance, last_version, out_of_order"
                                   " FROM " +
                                   ledger.balances())) {
    rows[r[0].c_str()] = Row{r[1].is_null() ? "" : r[1].c_str(), r[2].as<std::int64_t>(),
                             r[3].is_null() ? 0 : r[3].as<std::int64_t>(), r[4].as<std::int64_t>()};
  }
  return rows;
}

// Checks the read model against a fresh computation: same rows, every event applied once.
void expect_fresh_computation(Admin& admin, EventStore& events, const Ledger& ledger,
                              const std::string& category) {
  const auto expected = computed(events, category, admin.committed_head());
  EXPECT_EQ(stored(admin, ledger), expected.rows);
  EXPECT_EQ(admin.value("SELECT count(*) FROM " + ledger.applied()),
            std::to_string(expected.events));
  EXPECT_EQ(admin.value("SELECT count(*) FROM " + ledger.applied() + " WHERE n <> 1"), "0")
      << "an event was applied more than once";
}

NewEvent opened(const std::string& owner) {
  return {.id = std::nullopt,
          .type = "AccountOpened",
          .schema_version = 1,
          .data = {{"owner", owner}},
          .metadata = nlohmann::json::object()};
}

class InlineProjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = annals::testing::test_database_url();
    events_ = postgres::make_postgres_event_store({.connection_string = url_});
    store_ = make_postgres_projection_store({.connection_string = url_});
    category_ = "inl" + random_hex(10);
    ledger_ = std::make_shared<Ledger>(category_);
    // docs:begin inline-projection-wiring
    // Appends through `inline_` apply ledger_ in their own transaction; reads go to events_.
    inline_ = make_inline_projections_store(*events_, *store_, {ledger_},
                                            {.connection_string = url_, .pool_size = 4});
    // docs:end
  }

  StreamId account(int n) const { return StreamId(category_ + "-" + std::to_string(n)); }

  std::string inline_applied() {
    return admin_.value("SELECT inline_applied::text FROM annals.projections WHERE name = '" +
                        ledger_->name() + "'");
  }

  std::string url_;
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<ProjectionStore> store_;
  std::string category_;
  std::shared_ptr<Ledger> ledger_;
  std::unique_ptr<EventStore> inline_;
  Admin admin_;
};

TEST_F(InlineProjectionTest, AppliesInTheAppendsTransaction) {
  const auto result = inline_->append(account(1), ExpectedVersion::no_stream(),
                                      {opened("ada"), deposited(30), deposited(12)});
  // No runner: the read model changed with the append's commit.
  EXPECT_EQ(stored(admin_, *ledger_),
            (std::map<std::string, Row>{{account(1).value(), Row{"ada", 42, 3, 0}}}));
  EXPECT_EQ(inline_applied(), "{" + std::to_string(result.position.commit()) + "}");
  // The checkpoint is the runner's alone.
  EXPECT_EQ(store_->checkpoint(ledger_->name()), Position::start());
  // Reads go to the event store.
  EXPECT_EQ(inline_->read_stream(account(1), {}).size(), 3U);
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

TEST_F(InlineProjectionTest, HandlerThrowingFailsTheAppendAndWritesNothing) {
  inline_->append(account(1), ExpectedVersion::no_stream(), {opened("ada")});
  const auto before = inline_applied();
  NewEvent refused = deposited(5);
  refused.type = "Refused";
  try {
    inline_->append(account(1), ExpectedVersion::exact(1), {deposited(7), refused});
    FAIL() << "the append succeeded";
  } catch (const std::runtime_error& e) {
    // The handler's own exception, not a translation of it.
    EXPECT_EQ(dynamic_cast<const annals::Error*>(&e), nullptr);
    EXPECT_EQ(std::string(e.what()).rfind("refused event ", 0), 0U) << e.what();
  }
  // Nothing written: not the events, not the first event's read-model writes, not the record.
  EXPECT_EQ(events_->stream_version(account(1)), std::optional<StreamVersion>(1));
  EXPECT_EQ(stored(admin_, *ledger_),
            (std::map<std::string, Row>{{account(1).value(), Row{"ada", 0, 1, 0}}}));
  EXPECT_EQ(inline_applied(), before);
  // A refused append to a new stream leaves no stream behind either.
  EXPECT_THROW(inline_->append(account(2), ExpectedVersion::no_stream(), {refused}),
               std::runtime_error);
  EXPECT_EQ(events_->stream_version(account(2)), std::nullopt);
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

TEST_F(InlineProjectionTest, RefusedAppendAppliesNothing) {
  inline_->append(account(1), ExpectedVersion::no_stream(), {opened("ada")});
  EXPECT_THROW(inline_->append(account(1), ExpectedVersion::exact(5), {deposited(7)}),
               ConcurrencyError);
  EXPECT_EQ(stored(admin_, *ledger_).at(account(1).value()).balance, 0);
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

TEST_F(InlineProjectionTest, ExactResendAppliesNothingTwice) {
  std::vector<NewEvent> events = {opened("ada"), deposited(30)};
  for (auto& e : events) e.id = EventId::generate();
  const auto first = inline_->append(account(1), ExpectedVersion::no_stream(), events);
  const auto again = inline_->append(account(1), ExpectedVersion::no_stream(), events);
  EXPECT_EQ(again, first);
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

// Stream lifecycle through the inline store (docs/stream-lifecycle.md): a deleted stream refuses
// appends with StreamDeletedError unless reopened, the tombstone is applied like any event, and
// the store's metadata and state calls reach the event store.
TEST_F(InlineProjectionTest, DeletedStreamsRefuseInlineAppendsUnlessReopened) {
  inline_->append(account(1), ExpectedVersion::no_stream(), {opened("ada"), deposited(10)});
  inline_->delete_stream(account(1), ExpectedVersion::exact(2));
  EXPECT_TRUE(inline_->stream_state(account(1)).deleted);
  EXPECT_THROW(inline_->append(account(1), ExpectedVersion::any(), {deposited(5)}),
               StreamDeletedError);
  EXPECT_EQ(stored(admin_, *ledger_).at(account(1).value()).balance, 10);
  std::vector<StreamAppend> reopen;
  reopen.push_back(StreamAppend{.stream_id = account(1),
                                .expected = ExpectedVersion::exact(3),
                                .events = {deposited(5)},
                                .reopen = true});
  inline_->append_multi(std::move(reopen));
  EXPECT_FALSE(inline_->stream_state(account(1)).deleted);
  EXPECT_EQ(stored(admin_, *ledger_).at(account(1).value()).balance, 15);
  inline_->set_stream_metadata(account(1), StreamMetadata{.max_count = 1});
  EXPECT_EQ(inline_->read_stream(account(1), {}).size(), 1U);
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

// The switch of the brief: asynchronous up to X, inline, asynchronous again; no rebuild.
TEST_F(InlineProjectionTest, MovesBetweenInlineAndAsyncWithoutRebuild) {
  // Asynchronous: plain appends, a runner applies them up to X.
  for (int a = 0; a < 4; ++a) events_->append(account(a), ExpectedVersion::any(), {opened("o")});
  const auto x = events_->append(account(0), ExpectedVersion::any(), {deposited(1)}).position;
  {
    ProjectionRunner runner(*events_, *store_, {.owner = "inline-test"});
    runner.add(ledger_);
    runner.start();
    ASSERT_TRUE(runner.wait_for(ledger_->name(), x, std::chrono::minutes(1)));
    runner.stop();
  }
  ASSERT_EQ(store_->checkpoint(ledger_->name()), x);
  expect_fresh_computation(admin_, *events_, *ledger_, category_);

  // Inline, no runner: each append is in the read model at once, on old and new streams.
  for (int a = 0; a < 6; ++a) {
    inline_->append(account(a), ExpectedVersion::any(),
                    a >= 4 ? std::vector<NewEvent>{opened("n"), deposited(a)}
                           : std::vector<NewEvent>{deposited(10 + a)});
    expect_fresh_computation(admin_, *events_, *ledger_, category_);
  }
  EXPECT_EQ(store_->checkpoint(ledger_->name()), x);

  // Asynchronous again: plain appends, and a runner that skips what was applied inline.
  events_->append(account(2), ExpectedVersion::any(), {deposited(100)});
  const auto last = events_->append(account(6), ExpectedVersion::any(), {opened("late")}).position;
  ProjectionRunner runner(*events_, *store_, {.owner = "inline-test"});
  runner.add(ledger_);
  runner.start();
  ASSERT_TRUE(runner.wait_for(ledger_->name(), last, std::chrono::minutes(1)));
  ASSERT_TRUE(wait_for_checkpoint(*store_, ledger_->name(), last, std::chrono::minutes(1)));
  runner.stop();
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
  // The checkpoint passed every inline transaction, so the list is empty again.
  EXPECT_EQ(inline_applied(), "{}");
}

// A projection behind the appended stream (here: no runner applied a plain writer's events)
// leaves the inline append's events to its runner, which applies them in version order.
TEST_F(InlineProjectionTest, ProjectionBehindTheStreamLeavesTheEventsToTheRunner) {
  events_->append(account(1), ExpectedVersion::no_stream(), {opened("plain"), deposited(3)});
  const auto behind = inline_->append(account(1), ExpectedVersion::exact(2), {deposited(4)});
  EXPECT_TRUE(stored(admin_, *ledger_).empty()) << "applied before the stream's earlier events";
  EXPECT_EQ(inline_applied(), "{}");
  // Another stream, which the projection has not fallen behind on: applied inline.
  const auto fresh = inline_->append(account(2), ExpectedVersion::no_stream(), {opened("new")});
  EXPECT_EQ(stored(admin_, *ledger_).size(), 1U);

  ProjectionRunner runner(*events_, *store_, {.owner = "inline-test"});
  runner.add(ledger_);
  runner.start();
  const auto last = std::max(behind.position, fresh.position);
  ASSERT_TRUE(runner.wait_for(ledger_->name(), last, std::chrono::minutes(1)));
  ASSERT_TRUE(wait_for_checkpoint(*store_, ledger_->name(), last, std::chrono::minutes(1)));
  runner.stop();
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

// Never skip: a plain writer's transaction gets its transaction id first and commits last; an
// inline append commits in between. The inline events are in the read model at once, but the
// checkpoint cannot pass the open transaction, whose event the runner applies after it commits.
TEST_F(InlineProjectionTest, CheckpointNeverPassesATransactionThatCommitsLater) {
  pqxx::connection held_connection(url_);
  pqxx::work held(held_connection);
  const auto held_row = held.exec(
      "SELECT transaction_id::text FROM annals.append_events(ARRAY['" + account(9).value() +
      "'], ARRAY[-1]::bigint[], ARRAY[1], ARRAY[gen_random_uuid()], ARRAY['MoneyDeposited'],"
      " ARRAY[1], ARRAY['{\"amount\": 5}'::jsonb], ARRAY['{}'::jsonb], false)");
  const auto held_xid = std::stoull(held_row[0][0].c_str());

  const auto inline_result =
      inline_->append(account(1), ExpectedVersion::no_stream(), {opened("ada"), deposited(2)});
  EXPECT_GT(inline_result.position.commit(), held_xid);
  EXPECT_EQ(stored(admin_, *ledger_).size(), 1U);

  ProjectionRunner runner(*events_, *store_, {.owner = "inline-test"});
  runner.add(ledger_);
  runner.start();
  // While the plain transaction is open, no reader gets past it, and neither does the
  // checkpoint (wait_for returns false at its timeout).
  EXPECT_FALSE(
      runner.wait_for(ledger_->name(), inline_result.position, std::chrono::milliseconds(300)));
  EXPECT_LT(store_->checkpoint(ledger_->name()), Position(held_xid, 0));
  held.commit();
  const auto last = events_->append(account(1), ExpectedVersion::exact(2), {deposited(1)}).position;
  ASSERT_TRUE(runner.wait_for(ledger_->name(), last, std::chrono::minutes(1)));
  ASSERT_TRUE(wait_for_checkpoint(*store_, ledger_->name(), last, std::chrono::minutes(1)));
  runner.stop();
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
  EXPECT_EQ(inline_applied(), "{}");
}

// Inline appends from several threads at once, with a runner following: exactly once, in
// stream order.
TEST_F(InlineProjectionTest, ConcurrentInlineWritersWithARunner) {
  ProjectionRunner runner(*events_, *store_, {.owner = "inline-test"});
  runner.add(ledger_);
  runner.start();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      inline_->append(account(t), ExpectedVersion::no_stream(), {opened("t")});
      for (int i = 0; i < kPerThread; ++i) {
        // Every third append by a plain writer: the runner applies those.
        auto& store = i % 3 == 0 ? *events_ : *inline_;
        store.append(account(i % 2 == 0 ? t : (t + 1) % kThreads), ExpectedVersion::any(),
                     {deposited(i)});
      }
    });
  }
  for (auto& w : writers) w.join();
  const auto head = admin_.committed_head();
  ASSERT_TRUE(runner.wait_for(ledger_->name(), head, std::chrono::minutes(1)));
  ASSERT_TRUE(wait_for_checkpoint(*store_, ledger_->name(), head, std::chrono::minutes(1)));
  runner.stop();
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

// A rebuild empties the tables and the inline-applied list, and replays every event once.
TEST_F(InlineProjectionTest, RebuildReplaysInlineAppliedEventsOnce) {
  ProjectionRunner runner(*events_, *store_, {.owner = "inline-test"});
  runner.add(ledger_);
  runner.start();
  events_->append(account(1), ExpectedVersion::no_stream(), {opened("plain")});
  inline_->append(account(2), ExpectedVersion::no_stream(), {opened("inline"), deposited(5)});
  const auto head = admin_.committed_head();
  ASSERT_TRUE(runner.wait_for(ledger_->name(), head, std::chrono::minutes(1)));
  const auto request = runner.rebuild(ledger_->name());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  std::optional<RebuildRequest> seen;
  for (;;) {
    seen = store_->rebuild_request(request.id);
    ASSERT_TRUE(seen.has_value());
    if (seen->state == RebuildState::kDone || seen->state == RebuildState::kFailed) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the rebuild never finished";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a state, not a sync
  }
  EXPECT_EQ(seen->state, RebuildState::kDone) << seen->message.value_or("");
  const auto last = inline_->append(account(2), ExpectedVersion::exact(2), {deposited(1)});
  ASSERT_TRUE(runner.wait_for(ledger_->name(), last.position, std::chrono::minutes(1)));
  runner.stop();
  expect_fresh_computation(admin_, *events_, *ledger_, category_);
}

TEST_F(InlineProjectionTest, RefusesBadArguments) {
  EXPECT_THROW(static_cast<void>(make_inline_projections_store(*events_, *store_, {},
                                                               {.connection_string = url_})),
               InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(make_inline_projections_store(
                   *events_, *store_, {ledger_, ledger_}, {.connection_string = url_})),
               InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(make_inline_projections_store(*events_, *store_, {ledger_}, {})),
               InvalidArgumentError);
}

}  // namespace
}  // namespace annals::projections
