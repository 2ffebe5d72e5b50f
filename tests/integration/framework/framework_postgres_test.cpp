// annals::framework on PostgreSQL: the framework suite (repository, snapshots, temporal
// loading, command bus, upcasting real v1/v2 rows), the snapshot store contract, and what is
// particular to the PostgreSQL snapshot store.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/framework/snapshot_check.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/testkit/snapshot_store_contract.hpp"
#include "framework_suite.hpp"
#include "test_database.hpp"

namespace {

struct PostgresStores {
  static std::unique_ptr<annals::EventStore> make_store() {
    return annals::postgres::make_postgres_event_store(
        {.connection_string = annals::testing::test_database_url(), .pool_size = 8});
  }
  static std::unique_ptr<annals::SnapshotStore> make_snapshots() {
    return annals::postgres::make_postgres_snapshot_store(
        {.connection_string = annals::testing::test_database_url()});
  }
};

struct PostgresSnapshots {
  static std::unique_ptr<annals::SnapshotStore> make() { return PostgresStores::make_snapshots(); }
  // The PostgreSQL store binds snapshots to the chain: the contract's streams need events.
  static void prepare_stream(const annals::StreamId& stream, annals::StreamVersion last) {
    static const auto store = PostgresStores::make_store();
    std::vector<annals::NewEvent> events;
    for (annals::StreamVersion v = 1; v <= last; ++v) {
      events.push_back({.type = "contract-filler", .data = {{"v", v}}});
    }
    (void)store->append(stream, annals::ExpectedVersion::no_stream(), std::move(events));
  }
};

}  // namespace

namespace framework_suite {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, FrameworkSuite, PostgresStores);
}  // namespace framework_suite

namespace annals::testkit {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, SnapshotStoreContract, PostgresSnapshots);
}  // namespace annals::testkit

namespace {

TEST(PostgresSnapshotStoreTest, StoresStateAsJsonbInItsOwnTable) {
  auto snapshots = PostgresStores::make_snapshots();
  const auto stream = annals::testing::unique_stream("account");
  snapshots->save({.stream_id = annals::StreamId(stream),
                   .version = 12,
                   .schema_version = 3,
                   .state = {{"balance", 7}, {"owner", "ada"}}});
  pqxx::connection c(annals::testing::test_database_url());
  pqxx::nontransaction tx(c);
  const auto row = tx.exec_params1(
      "SELECT stream_version, schema_version, state->>'owner', jsonb_typeof(state) "
      "FROM annals.snapshots WHERE stream_id = $1",
      stream);
  EXPECT_EQ(row[0].as<std::int64_t>(), 12);
  EXPECT_EQ(row[1].as<int>(), 3);
  EXPECT_EQ(row[2].as<std::string>(), "ada");
  EXPECT_EQ(row[3].as<std::string>(), "object");
}

TEST(PostgresSnapshotStoreTest, TruncatingTheTableLosesOnlySpeed) {
  // Snapshots are a cache (decision 10): an operator may empty the table at any time.
  annals::EventRegistry registry;
  registry.register_events<bank::Account>();
  auto store = PostgresStores::make_store();
  auto snapshots = PostgresStores::make_snapshots();
  annals::Repository<bank::Account> accounts(
      *store, registry,
      {.snapshots = snapshots.get(), .snapshot_policy = annals::SnapshotPolicy::every(2)});
  const auto id = framework_suite::new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 5});
  account.execute(bank::Deposit{id, 6});
  accounts.save(account);
  ASSERT_TRUE(snapshots->load(account.stream_id()).has_value());
  {
    pqxx::connection c(annals::testing::test_database_url());
    pqxx::nontransaction tx(c);
    tx.exec0("DELETE FROM annals.snapshots");
  }
  const auto loaded = accounts.load(id);
  EXPECT_EQ(loaded.state(), account.state());
  EXPECT_EQ(loaded.version(), 3);
}

// ---- Snapshots are bound to the chain -------------------------------------------

// An account with a snapshot at version 2 (opened, `amount` deposited), through a bus that
// never caches, so that every command loads from the snapshot store.
class SnapshotIntegrityTest : public ::testing::Test {
 protected:
  SnapshotIntegrityTest()
      : store_(PostgresStores::make_store()),
        snapshots_(PostgresStores::make_snapshots()),
        bus_(*store_, registry(),
             framework_suite::quick({.snapshots = snapshots_.get(),
                                     .snapshot_policy = annals::SnapshotPolicy::every(2),
                                     .cache_capacity = 0})) {
    framework_suite::wire(bus_);
  }

  static const annals::EventRegistry& registry() {
    static const annals::EventRegistry r = [] {
      annals::EventRegistry out;
      out.register_events<bank::Account>();
      return out;
    }();
    return r;
  }

  std::string open_account(std::int64_t amount) {
    const auto id = framework_suite::new_id();
    bus_.send(bank::OpenAccount{id, "ada"});
    bus_.send(bank::Deposit{id, amount});
    EXPECT_TRUE(snapshots_->lookup(stream(id)).usable());
    return id;
  }

  static annals::StreamId stream(const std::string& id) {
    return annals::StreamId("account-" + id);
  }

  // Waits (bounded) until read_all shows the stream's last event: a writing transaction still
  // running anywhere in the cluster holds readers back (ARCHITECTURE decision 5).
  void wait_settled(const annals::StreamId& s) {
    const auto last = store_->read_stream(s).back().position;
    const auto signal = store_->watch();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      const auto token = signal->observe();
      if (!(store_->head_position() < last)) return;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the log did not settle up to " << last.to_string();
        return;
      }
      signal->wait(token, std::chrono::milliseconds(200));
    }
  }

  // As the database superuser, bypassing the store.
  static void sql(const std::string& statement, const std::string& stream_id) {
    pqxx::connection c(annals::testing::test_database_url());
    pqxx::nontransaction tx(c);
    tx.exec_params0(statement, stream_id);
  }

  std::unique_ptr<annals::EventStore> store_;
  std::unique_ptr<annals::SnapshotStore> snapshots_;
  annals::CommandBus bus_;
};

TEST_F(SnapshotIntegrityTest, SaveRecordsTheEventHashAndADigestComputedByTheServer) {
  const auto id = open_account(70);
  pqxx::connection c(annals::testing::test_database_url());
  pqxx::nontransaction tx(c);
  const auto row = tx.exec_params1(
      "SELECT s.event_hash = e.hash,"
      "       s.digest = sha256(e.hash || convert_to(s.stream_version::text || '|' ||"
      "                         s.schema_version::text || '|' || s.state::text, 'UTF8'))"
      "  FROM annals.snapshots s JOIN annals.events e USING (stream_id, stream_version)"
      " WHERE s.stream_id = $1",
      stream(id).value());
  EXPECT_TRUE(row[0].as<bool>());
  EXPECT_TRUE(row[1].as<bool>());  // the formula of docs/schema.md, recomputed here
}

TEST_F(SnapshotIntegrityTest, StateEditedInPlaceIsIgnoredCountedReportedAndNeverDecidesACommand) {
  const auto id = open_account(70);
  sql("UPDATE annals.snapshots SET state = jsonb_set(state, '{balance}', '1000000')"
      " WHERE stream_id = $1",
      stream(id).value());

  const auto looked_up = snapshots_->lookup(stream(id));
  EXPECT_EQ(looked_up.ignored, annals::SnapshotIgnored::kStateEdited);
  EXPECT_EQ(looked_up.snapshot->state["balance"], 1'000'000);
  EXPECT_EQ(snapshots_->load(stream(id)), std::nullopt);
  EXPECT_EQ(snapshots_->stats().ignored_state_edited, 2u);

  wait_settled(stream(id));  // the check lists streams via read_all
  const auto report = annals::check_snapshots<bank::Account>(*store_, registry(), *snapshots_);
  const annals::SnapshotMismatch* found = nullptr;
  for (const auto& m : report.mismatches) {
    if (m.stream == stream(id)) found = &m;
  }
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->problem, "balance: snapshot 1000000, events 70");
  EXPECT_EQ(found->ignored, annals::SnapshotIgnored::kStateEdited);

  // The edited balance would allow it; the true one (70) does not.
  const auto before = snapshots_->ignored_snapshots();
  EXPECT_THROW(bus_.send(bank::Withdraw{id, 500}), bank::InsufficientFunds);
  EXPECT_EQ(snapshots_->ignored_snapshots(), before + 1);
  // The next save replaces the bad snapshot whatever the policy says.
  bus_.send(bank::Withdraw{id, 50});
  const auto replaced = snapshots_->lookup(stream(id));
  ASSERT_TRUE(replaced.usable());
  EXPECT_EQ(replaced.snapshot->version, 3);
  EXPECT_EQ(replaced.snapshot->state["balance"], 20);
}

TEST_F(SnapshotIntegrityTest, SnapshotOfAnotherHistoryIsIgnored) {
  // A row left over from another history: copied onto a stream whose event at that version
  // has another hash (what a restore of the events from an older backup leaves behind).
  const auto rich = open_account(1'000'000);
  const auto poor = open_account(70);
  sql("DELETE FROM annals.snapshots WHERE stream_id = $1", stream(poor).value());
  sql("INSERT INTO annals.snapshots (stream_id, stream_version, schema_version, state,"
      "                              event_hash, digest)"
      " SELECT '" +
          stream(poor).value() +
          "', stream_version, schema_version, state, event_hash,"
          "        digest FROM annals.snapshots WHERE stream_id = $1",
      stream(rich).value());
  EXPECT_EQ(snapshots_->lookup(stream(poor)).ignored, annals::SnapshotIgnored::kHistoryDiffers);
  EXPECT_EQ(snapshots_->stats().ignored_history_differs, 1u);
  EXPECT_THROW(bus_.send(bank::Withdraw{poor, 500}), bank::InsufficientFunds);
  EXPECT_EQ(snapshots_->stats().ignored_history_differs, 2u);
}

TEST_F(SnapshotIntegrityTest, SnapshotWithoutItsEventIsIgnoredAndReplacedByAnOlderOne) {
  const auto id = open_account(70);
  // Ahead of the stream (its events restored from a backup older than the snapshot).
  snapshots_->save({.stream_id = stream(id),
                    .version = 40,
                    .schema_version = 1,
                    .state = bank::Account::State{true, false, "ghost", 999}});
  EXPECT_EQ(snapshots_->lookup(stream(id)).ignored, annals::SnapshotIgnored::kHistoryDiffers);
  bus_.send(bank::Withdraw{id, 5});
  const auto replaced = snapshots_->lookup(stream(id));
  ASSERT_TRUE(replaced.usable());
  EXPECT_EQ(replaced.snapshot->version, 3);
}

TEST_F(SnapshotIntegrityTest, SnapshotWrittenBeforeMigration0006IsIgnored) {
  const auto id = open_account(70);
  sql("UPDATE annals.snapshots SET event_hash = NULL, digest = NULL WHERE stream_id = $1",
      stream(id).value());
  EXPECT_EQ(snapshots_->lookup(stream(id)).ignored, annals::SnapshotIgnored::kUnbound);
  EXPECT_EQ(snapshots_->stats().ignored_unbound, 1u);
  EXPECT_EQ(annals::Repository<bank::Account>(*store_, registry(), {.snapshots = snapshots_.get()})
                .load(id)
                .state()
                .balance,
            70);
}

// ---- JSON nested deeper than annals::kMaxJsonDepth (issue 13) --------------------

// {"a": {"a": ... 1 ...}}, `depth` levels deep.
std::string deep_object(std::size_t depth) {
  std::string text;
  text.reserve(depth * 6 + 1);
  for (std::size_t i = 0; i < depth; ++i) text += "{\"a\":";
  text += '1';
  text.append(depth, '}');
  return text;
}

// Snapshot version, balance and state depth stored for `stream`, as text.
std::string stored_snapshot(const annals::StreamId& stream) {
  pqxx::connection c(annals::testing::test_database_url());
  pqxx::nontransaction tx(c);
  const auto rows = tx.exec_params(
      "SELECT stream_version || '|' || coalesce(state->>'balance', '-') FROM annals.snapshots"
      " WHERE stream_id = $1",
      stream.value());
  return rows.empty() ? "none" : rows[0][0].c_str();
}

TEST_F(SnapshotIntegrityTest, ASaveNestedDeeperThanTheLimitIsRefusedAndWritesNothing) {
  const auto id = open_account(70);
  const auto fresh = stream(framework_suite::new_id());
  const std::string before = stored_snapshot(stream(id));
  ASSERT_NE(before, "none");
  for (const auto& target : {stream(id), fresh}) {
    // Moved, never copied: copying a value this deep would recurse once per level.
    annals::Snapshot snapshot{
        .stream_id = target, .version = 2, .schema_version = 1, .state = nlohmann::json::object()};
    snapshot.state["deep"] = nlohmann::json::parse(deep_object(100'000));  // parsing iterates
    try {
      snapshots_->save(snapshot);
      ADD_FAILURE() << "a state 100,001 levels deep was saved for " << target.value();
    } catch (const annals::InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(
                    "is JSON nested 100001 levels deep, over the limit of 512 levels"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(stored_snapshot(stream(id)), before);  // the earlier snapshot is untouched
  EXPECT_EQ(stored_snapshot(fresh), "none");
  EXPECT_EQ(snapshots_->stats(), annals::SnapshotStoreStats{});
}

// The owner replaces a snapshot's state with JSON 10,000 levels deep (PostgreSQL's jsonb input
// refuses 20,000 under its default max_stack_depth) and recomputes the digest, so that the
// chain check alone would accept it: the store refuses the row before parsing it, with
// CorruptionError, and the repository treats that as a cache miss, replaying the events.
TEST_F(SnapshotIntegrityTest, AStoredStateNestedTooDeepIsRefusedAndTheAggregateLoadsFromEvents) {
  const auto id = open_account(70);
  sql("UPDATE annals.snapshots s SET state = '" + deep_object(10'000) +
          "'::jsonb,"
          " digest = sha256(e.hash || convert_to(s.stream_version::text || '|' ||"
          "                 s.schema_version::text || '|' || '" +
          deep_object(10'000) +
          "'::jsonb::text, 'UTF8'))"
          "  FROM annals.events e"
          " WHERE e.stream_id = s.stream_id AND e.stream_version = s.stream_version"
          "   AND s.stream_id = $1",
      stream(id).value());

  try {
    static_cast<void>(snapshots_->lookup(stream(id)));
    ADD_FAILURE() << "a stored state 10,000 levels deep was loaded";
  } catch (const annals::CorruptionError& e) {
    EXPECT_EQ(std::string(e.what()), "stored snapshot of stream \"" + stream(id).value() +
                                         "\" is refused: the state is JSON nested 10000 levels "
                                         "deep, over the limit of 512 levels");
  }
  EXPECT_THROW(static_cast<void>(snapshots_->load(stream(id))), annals::CorruptionError);

  const auto loaded =
      annals::Repository<bank::Account>(*store_, registry(), {.snapshots = snapshots_.get()})
          .load(id);
  EXPECT_EQ(loaded.version(), 2);
  EXPECT_EQ(loaded.state().balance, 70);
  // Commands are decided on the replayed state.
  EXPECT_THROW(bus_.send(bank::Withdraw{id, 500}), bank::InsufficientFunds);
  bus_.send(bank::Withdraw{id, 50});
  EXPECT_EQ(annals::Repository<bank::Account>(*store_, registry(), {}).load(id).state().balance,
            20);
  // Refused, not ignored: the chain verdicts count only rows that could be read.
  EXPECT_EQ(snapshots_->stats(), annals::SnapshotStoreStats{});
}

TEST(PostgresSnapshotStoreTest, RefusesADatabaseWithoutTheSnapshotsTable) {
  const annals::testing::ScratchDatabase unmigrated("annals_fw_nomig", false);
  EXPECT_THROW(
      (void)annals::postgres::make_postgres_snapshot_store({.connection_string = unmigrated.url()}),
      annals::NotFoundError);
}

}  // namespace
