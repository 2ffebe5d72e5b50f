// A partitioned log (issue 17; sql/0017; docs/scaling.md, "Partitioned log"): annals.events
// partitioned by ranges of 4 global positions, so that a few appends cross several partitions.
// Appends (single, batch, multi-stream, idempotent re-sends of events in older partitions,
// conflicts), reads, a subscription, verify and an anchor behave as on a plain table; the
// writer's attacks on a partition itself are refused; the default partition takes what runs
// past the ranges; partitions move to another tablespace or to an archive schema and back.
//
// One database for the binary, partitioned once; each test appends to streams of its own and
// creates the partitions it needs (ensure), as a scheduled `annals partitions --ensure` would.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/anchor.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/verify.hpp"
#include "db_error.hpp"
#include "test_database.hpp"
#include "test_roles.hpp"

namespace {

using annals::EventId;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamAppend;
using annals::StreamId;
using annals::testing::test_database_url;
using annals::testing::test_roles;
using annals::testing::unique_stream;

constexpr std::int64_t kPartitionSize = 4;

// The database of this binary, partitioned (before the role layout, as a deployment would run
// `annals migrate --partitioned-log --roles`).
class PartitionedLogEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    annals::postgres::migrate(test_database_url(), {.partitioned_log = kPartitionSize});
    (void)test_roles();
  }
};
const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PartitionedLogEnvironment());

std::string state_of(const pqxx::sql_error& e) {
  return annals::postgres::detail::to_db_error(e).sqlstate();
}

// The store as the application runs it: through the writer role.
std::unique_ptr<annals::EventStore> writer_store() {
  return annals::postgres::make_postgres_event_store(
      {.connection_string = test_roles().writer_url});
}

NewEvent event(const std::string& type, int n, std::optional<EventId> id = {}) {
  return NewEvent{.id = id, .type = type, .data = {{"n", n}}};
}

// The partition (table name) that holds each event of `stream`, by version.
std::map<std::int64_t, std::string> partitions_of(const std::string& stream) {
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  std::map<std::int64_t, std::string> where;
  for (const auto& row :
       tx.exec_params("SELECT e.stream_version, c.relname::text FROM annals.events e"
                      " JOIN pg_class c ON c.oid = e.tableoid"
                      " WHERE e.stream_id = $1",
                      stream)) {
    where[row[0].as<std::int64_t>()] = row[1].c_str();
  }
  return where;
}

std::set<std::string> distinct(const std::map<std::int64_t, std::string>& where) {
  std::set<std::string> names;
  for (const auto& [version, name] : where) names.insert(name);
  return names;
}

// The SQLSTATE `sql` fails with when run by `url` (empty when it ran); rolled back either way.
std::string attempt(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  try {
    tx.exec(sql);
  } catch (const pqxx::sql_error& e) {
    return state_of(e);
  }
  return "";
}

// The same, committed when it ran.
std::string attempt_committed(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  try {
    tx.exec(sql);
  } catch (const pqxx::sql_error& e) {
    return state_of(e);
  }
  tx.commit();
  return "";
}

// The last global position handed out (failed appends use up positions too).
std::int64_t log_position() {
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  return tx.exec1("SELECT annals.log_position()")[0].as<std::int64_t>();
}

// The name of the partition holding `position`.
std::string partition_at(std::int64_t position) {
  for (const auto& p : annals::postgres::list_log_partitions(test_database_url())) {
    if (p.from_position <= position && position < p.to_position) return p.name;
  }
  return "";
}

void ensure() { (void)annals::postgres::ensure_log_partitions(test_database_url()); }

void migrate_creates_contiguous_ranges_ahead_and_is_repeatable() {
  ensure();
  const auto partitions = annals::postgres::list_log_partitions(test_database_url());
  ASSERT_GE(partitions.size(), 2u);
  for (std::size_t i = 1; i < partitions.size(); ++i) {
    EXPECT_EQ(partitions[i].from_position, partitions[i - 1].to_position);
  }
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  EXPECT_EQ(
      tx.exec1("SELECT c.relkind::text FROM pg_class c WHERE c.oid = 'annals.events'::regclass")[0]
          .as<std::string>(),
      "p");
  tx.commit();
  // Again, with the same size: nothing changes, nothing fails.
  EXPECT_TRUE(
      annals::postgres::migrate(test_database_url(), {.partitioned_log = kPartitionSize}).empty());
  EXPECT_THROW(annals::postgres::migrate(test_database_url(), {.partitioned_log = 0}),
               annals::InvalidArgumentError);
}

void appends_and_reads_across_partitions_are_unchanged() {
  auto store = writer_store();
  const std::string a = unique_stream("part");
  const std::string b = unique_stream("part");
  const std::string c = unique_stream("part");
  const auto first_id = EventId::generate();
  const auto first =
      store->append(StreamId(a), ExpectedVersion::no_stream(), {event("Opened", 1, first_id)});
  for (int i = 2; i <= 9; ++i) {  // single appends, each through the one-statement path
    ensure();
    store->append(StreamId(a), ExpectedVersion::exact(i - 1), {event("Single", i)});
  }
  ensure();
  std::vector<NewEvent> batch;
  for (int i = 1; i <= 7; ++i) batch.push_back(event("Batch", i));
  const auto batched = store->append(StreamId(b), ExpectedVersion::no_stream(), batch);
  EXPECT_EQ(batched.last_version, 7);
  ensure();
  const auto multi =
      store->append_multi({StreamAppend{.stream_id = StreamId(a),
                                        .expected = ExpectedVersion::exact(9),
                                        .events = {event("Multi", 10)}},
                           StreamAppend{.stream_id = StreamId(c),
                                        .expected = ExpectedVersion::no_stream(),
                                        .events = {event("Multi", 1), event("Multi", 2)}}});
  ASSERT_EQ(multi.size(), 2u);
  ensure();

  // The streams' events lie in several partitions.
  EXPECT_GE(distinct(partitions_of(a)).size(), 3u);
  EXPECT_GE(distinct(partitions_of(b)).size(), 2u);

  // Stream reads: every version once, in order, both directions.
  const auto read_a = store->read_stream(StreamId(a));
  ASSERT_EQ(read_a.size(), 10u);
  for (std::size_t i = 0; i < read_a.size(); ++i) {
    EXPECT_EQ(read_a[i].version, static_cast<std::int64_t>(i + 1));
  }
  const auto back = store->read_stream(
      StreamId(a), {.direction = annals::ReadDirection::kBackward, .max_count = 3});
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].version, 10);
  EXPECT_EQ(store->stream_version(StreamId(b)), 7);

  // The global log from before the first append: all 19 events, in log order (once settled: a
  // transaction of another database of the cluster can hold the horizon back a moment).
  annals::postgres::wait_for_position(*store, multi[1].position, std::chrono::seconds(60));
  const auto log =
      store->read_all({.after = Position(first.position.commit() - 1, 0), .max_count = 1000});
  std::vector<const RecordedEvent*> ours;
  for (const auto& e : log) {
    if (e.stream_id.value() == a || e.stream_id.value() == b || e.stream_id.value() == c) {
      ours.push_back(&e);
    }
  }
  ASSERT_EQ(ours.size(), 19u);
  for (std::size_t i = 1; i < ours.size(); ++i) EXPECT_LT(ours[i - 1]->position, ours[i]->position);

  // An idempotent re-send of the first event (in the oldest of these partitions) is recognized.
  ASSERT_NE(partition_at(first.position.sequence()), partition_at(multi[1].position.sequence()));
  const auto again =
      store->append(StreamId(a), ExpectedVersion::no_stream(), {event("Opened", 1, first_id)});
  EXPECT_EQ(again.first_version, 1);
  EXPECT_EQ(again.position, first.position);
  // The same id with another event after it is a partial overlap; in another stream it is taken.
  EXPECT_THROW(store->append(StreamId(a), ExpectedVersion::any(),
                             {event("Opened", 1, first_id), event("New", 2)}),
               annals::IdempotencyError);
  EXPECT_THROW(store->append(StreamId(unique_stream("part")), ExpectedVersion::any(),
                             {event("Opened", 1, first_id)}),
               annals::IdempotencyError);
  // Conflicts are reported with the actual version, whichever partition the head is in.
  try {
    store->append(StreamId(a), ExpectedVersion::exact(3), {event("Late", 1)});
    ADD_FAILURE() << "a stale expected version was accepted";
  } catch (const annals::ConcurrencyError& e) {
    EXPECT_EQ(e.actual(), 10);
  }
  EXPECT_THROW(store->append(StreamId(b), ExpectedVersion::no_stream(), {event("Again", 1)}),
               annals::ConcurrencyError);
  EXPECT_EQ(store->read_stream(StreamId(a)).size(), 10u);
}

void event_ids_are_unique_across_partitions_even_past_the_append_function() {
  auto store = writer_store();
  const std::string a = unique_stream("part");
  const auto id = EventId::generate();
  store->append(StreamId(a), ExpectedVersion::no_stream(), {event("Opened", 1, id)});
  for (int i = 0; i < 2 * kPartitionSize; ++i) {
    ensure();
    store->append(StreamId(unique_stream("filler")), ExpectedVersion::any(), {event("F", i)});
  }
  ensure();
  // The same id inserted straight into the table, for another stream, in a later partition:
  // only annals.event_ids can see the first one (the partitions' own indexes cannot).
  EXPECT_EQ(
      attempt(test_database_url(),
              "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
              " schema_version, data, metadata) VALUES ('" +
                  unique_stream("dup") + "', -4, '" + id.to_string() + "', 'Dup', 1, '{}', '{}')"),
      "23505");
}

void subscription_verify_and_anchor_see_the_whole_log() {
  auto store = writer_store();
  const std::string category = "sub" + unique_stream("c").substr(2, 8);
  const auto start = store->head_position();
  std::vector<Position> appended;
  for (int i = 1; i <= 10; ++i) {
    ensure();
    appended.push_back(store
                           ->append(StreamId(category + "-" + std::to_string(i % 3)),
                                    ExpectedVersion::any(), {event("Ticked", i)})
                           .position);
  }
  std::mutex mutex;
  std::vector<Position> delivered;
  auto subscription = store->subscribe({.after = start, .filter = {.category = category}},
                                       [&](const RecordedEvent& e) {
                                         std::lock_guard lock(mutex);
                                         delivered.push_back(e.position);
                                       });
  ASSERT_TRUE(subscription->wait_for(appended.back(), std::chrono::seconds(30)));
  subscription->stop();
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(delivered, appended);
  }

  const auto report = annals::postgres::verify(test_roles().auditor_url);
  EXPECT_TRUE(report.ok()) << report.findings.at(0).message;
  EXPECT_GE(report.events, 10);
  const auto anchor = annals::postgres::take_anchor(test_roles().auditor_url);
  ensure();
  store->append(StreamId(category + "-after"), ExpectedVersion::any(), {event("After", 1)});
  const auto anchored = annals::postgres::verify(test_roles().auditor_url, {.anchors = {anchor}});
  EXPECT_TRUE(anchored.ok()) << anchored.findings.at(0).message;
  ASSERT_EQ(anchored.anchors.size(), 1u);
  EXPECT_EQ(anchored.anchors[0].outcome, annals::postgres::AnchorOutcome::kVerified);
}

TEST(PartitionedLogTest, TheWriterCannotTouchAPartitionAndTheOwnerIsRefusedByItsTriggers) {
  auto store = writer_store();
  const std::string s = unique_stream("attack");
  const auto r = store->append(StreamId(s), ExpectedVersion::no_stream(), {event("Opened", 1)});
  const std::string part = "annals." + partition_at(r.position.sequence());
  const std::string& writer = test_roles().writer_url;
  const std::string where = " WHERE stream_id = '" + s + "'";
  // The writer holds no privilege on a partition: 42501 before any row is touched.
  EXPECT_EQ(attempt(writer, "UPDATE " + part + " SET data = '{}'" + where), "42501");
  EXPECT_EQ(attempt(writer, "DELETE FROM " + part + where), "42501");
  EXPECT_EQ(attempt(writer, "TRUNCATE " + part), "42501");
  EXPECT_EQ(attempt(writer, "INSERT INTO " + part +
                                " (transaction_id, stream_id, stream_version, event_id, event_type,"
                                " schema_version, data, metadata, recorded_at, hash, "
                                "global_position) SELECT transaction_id, stream_id, 2,"
                                " gen_random_uuid(), event_type, schema_version, data, metadata,"
                                " recorded_at, hash, global_position + 1 FROM " +
                                part + where),
            "42501");
  EXPECT_EQ(attempt(writer,
                    "INSERT INTO annals.events (stream_id, stream_version, event_id,"
                    " event_type, schema_version, data, metadata, hash) VALUES ('" +
                        s + "', 2, gen_random_uuid(), 'Forged', 1, '{}', '{}', '\\x00')"),
            "42501");
  EXPECT_EQ(attempt(writer, "SELECT annals.ensure_log_partitions()"), "42501");
  // The owner (here the superuser) is refused by the cloned row triggers and the partition's
  // own TRUNCATE trigger, on the partition as on annals.events.
  const std::string& admin = test_database_url();
  EXPECT_EQ(attempt(admin, "UPDATE " + part + " SET data = '{}'" + where), "AN010");
  EXPECT_EQ(attempt(admin, "DELETE FROM " + part + where), "AN010");
  EXPECT_EQ(attempt(admin, "TRUNCATE " + part), "AN010");
  EXPECT_EQ(attempt(admin, "DELETE FROM annals.events" + where), "AN010");
  EXPECT_EQ(attempt(admin, "DELETE FROM annals.event_ids"), "AN010");
  // verify reports a partition whose guard was dropped, and is content once it is back.
  EXPECT_EQ(attempt_committed(admin, "DROP TRIGGER events_refuse_truncate ON " + part), "");
  const auto report = annals::postgres::verify(admin);
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, annals::postgres::FindingKind::kTriggerMissing);
  EXPECT_NE(report.findings[0].message.find(part), std::string::npos) << report.findings[0].message;
  EXPECT_EQ(
      attempt_committed(admin, "CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON " + part +
                                   " FOR EACH STATEMENT EXECUTE FUNCTION "
                                   "annals.refuse_event_change()"),
      "");
  EXPECT_TRUE(annals::postgres::verify(admin).ok());
}

void appends_past_the_last_range_land_in_the_default_partition_until_ensure_catches_up() {
  auto store = writer_store();
  const std::string s = unique_stream("overflow");
  ensure();
  const auto last_range = annals::postgres::list_log_partitions(test_database_url()).back();
  const auto before = store->head_position();
  std::int64_t position = before.sequence();
  int n = 0;
  while (position < last_range.to_position + 2) {
    position = store->append(StreamId(s), ExpectedVersion::any(), {event("Over", ++n)})
                   .position.sequence();
  }
  EXPECT_EQ(partitions_of(s).rbegin()->second, "events_default");
  ensure();  // new ranges start past what the default partition holds
  const auto after = annals::postgres::list_log_partitions(test_database_url()).back();
  EXPECT_GT(after.from_position, position);
  const auto next = store->append(StreamId(s), ExpectedVersion::exact(n), {event("Over", n + 1)});
  EXPECT_NE(partition_at(next.position.sequence()), "");
  EXPECT_EQ(store->read_stream(StreamId(s)).size(), static_cast<std::size_t>(n + 1));
  const auto report = annals::postgres::verify(test_database_url(), {.stream = s});
  EXPECT_TRUE(report.ok()) << report.findings.at(0).message;
}

void a_partition_moves_to_another_tablespace_and_stays_readable() {
  // A tablespace needs an empty directory owned by the server's user: the data directory's.
  std::string data_directory;
  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    data_directory = tx.exec1("SHOW data_directory")[0].c_str();
  }
  struct stat owner {};
  ASSERT_EQ(::stat(data_directory.c_str(), &owner), 0);
  const auto dir =
      std::filesystem::temp_directory_path() / ("annals_cold_" + annals::testing::random_hex(8));
  std::filesystem::create_directories(dir);
  ASSERT_EQ(::chown(dir.c_str(), owner.st_uid, owner.st_gid), 0) << "run the tests as root";
  const std::string tablespace = "annals_cold_" + annals::testing::random_hex(8);

  auto store = writer_store();
  const std::string s = unique_stream("cold");
  ensure();
  const auto r = store->append(StreamId(s), ExpectedVersion::no_stream(), {event("Cold", 1)});
  const std::string part = partition_at(r.position.sequence());
  {
    pqxx::connection c(test_database_url());
    pqxx::nontransaction tx(c);
    tx.exec("CREATE TABLESPACE " + tablespace + " LOCATION " + tx.quote(dir.string()));
    tx.exec("ALTER TABLE annals." + part + " SET TABLESPACE " + tablespace);
  }
  bool listed = false;
  for (const auto& p : annals::postgres::list_log_partitions(test_database_url())) {
    if (p.name == part) listed = p.tablespace == tablespace;
  }
  EXPECT_TRUE(listed);
  EXPECT_EQ(store->read_stream(StreamId(s)).size(), 1u);
  store->append(StreamId(s), ExpectedVersion::exact(1), {event("Cold", 2)});
  const auto report = annals::postgres::verify(test_database_url(), {.stream = s});
  EXPECT_TRUE(report.ok()) << report.findings.at(0).message;
  {
    pqxx::connection c(test_database_url());
    pqxx::nontransaction tx(c);
    tx.exec("ALTER TABLE annals." + part + " SET TABLESPACE pg_default");
    tx.exec("DROP TABLESPACE " + tablespace);
  }
  std::filesystem::remove_all(dir);
}

void an_archived_partition_leaves_the_log_and_comes_back_whole() {
  auto store = writer_store();
  // A partition of its own for stream `s`: start at a fresh range.
  ensure();
  const std::string filler = unique_stream("filler");
  const auto starts_a_range = [](std::int64_t position) {
    for (const auto& p : annals::postgres::list_log_partitions(test_database_url())) {
      if (p.from_position == position) return true;
    }
    return false;
  };
  while (!starts_a_range(log_position() + 1)) {
    store->append(StreamId(filler), ExpectedVersion::any(), {event("F", 0)});
    ensure();
  }
  const std::string s = unique_stream("archived");
  const auto first_id = EventId::generate();
  std::vector<NewEvent> old_events{event("Old", 1, first_id)};
  for (int i = 2; i <= kPartitionSize; ++i) old_events.push_back(event("Old", i));
  const auto old = store->append(StreamId(s), ExpectedVersion::no_stream(), old_events);
  const std::string part = partition_at(old.position.sequence());
  ASSERT_EQ(distinct(partitions_of(s)), std::set<std::string>{part});

  // The archive schema, made by the database's owner for the store's owner (who may not create
  // schemas under the role layout).
  EXPECT_EQ(attempt_committed(test_database_url(), "CREATE SCHEMA cold_archive AUTHORIZATION " +
                                                       test_roles().layout.owner),
            "");
  // While the stream ends there (and the range takes events), the partition stays.
  EXPECT_THROW(annals::postgres::archive_log_partition(test_database_url(), part, "cold_archive"),
               annals::InvalidArgumentError);
  ensure();
  store->append(StreamId(s), ExpectedVersion::exact(kPartitionSize), {event("New", 5)});
  ensure();
  store->append(StreamId(filler), ExpectedVersion::any(), {event("F", 1)});
  EXPECT_THROW(annals::postgres::archive_log_partition(test_database_url(), part, "annals"),
               annals::InvalidArgumentError);
  EXPECT_EQ(annals::postgres::archive_log_partition(test_database_url(), part, "cold_archive"),
            kPartitionSize);

  // The log no longer holds the archived events; the stream goes on from its attached head.
  EXPECT_EQ(store->read_stream(StreamId(s)).size(), 1u);
  const auto next = store->append(StreamId(s), ExpectedVersion::exact(5), {event("Newer", 6)});
  EXPECT_EQ(next.first_version, 6);
  // An archived id stays claimed: a re-send is not stored twice.
  EXPECT_THROW(store->append(StreamId(s), ExpectedVersion::any(), {event("Old", 1, first_id)}),
               annals::IdempotencyError);
  // The archive is read-only, even for the owner.
  EXPECT_EQ(attempt(test_database_url(), "DELETE FROM cold_archive." + part), "AN010");
  EXPECT_EQ(attempt(test_database_url(), "TRUNCATE cold_archive." + part), "AN010");
  // verify checks the attached log: the stream's chain now starts at a missing predecessor.
  const auto detached = annals::postgres::verify(test_database_url(), {.stream = s});
  EXPECT_FALSE(detached.ok());
  bool listed = false;
  for (const auto& p : annals::postgres::list_log_partitions(test_database_url())) {
    if (p.name == part) listed = p.archived_in == "cold_archive";
  }
  EXPECT_TRUE(listed);

  // Restored, the log is whole again and verifies.
  EXPECT_EQ(annals::postgres::restore_log_partition(test_database_url(), part), kPartitionSize);
  EXPECT_EQ(store->read_stream(StreamId(s)).size(), 6u);
  const auto whole = annals::postgres::verify(test_database_url());
  EXPECT_TRUE(whole.ok()) << whole.findings.at(0).message;
  EXPECT_THROW(annals::postgres::restore_log_partition(test_database_url(), part),
               annals::InvalidArgumentError);
}

// Each TEST below is a process of its own with a database of its own (ctest runs every test
// alone), so the guarantees are grouped into three to pay that setup three times.

// Appends, reads, never-skip order, a subscription, verify and an anchor across partitions,
// and partition maintenance.
TEST(PartitionedLogTest, AppendsReadsSubscriptionsVerifyAndAnchorsAreUnchangedAcrossPartitions) {
  {
    SCOPED_TRACE("migrate_creates_contiguous_ranges_ahead_and_is_repeatable");
    migrate_creates_contiguous_ranges_ahead_and_is_repeatable();
  }
  {
    SCOPED_TRACE("appends_and_reads_across_partitions_are_unchanged");
    appends_and_reads_across_partitions_are_unchanged();
  }
  {
    SCOPED_TRACE("event_ids_are_unique_across_partitions_even_past_the_append_function");
    event_ids_are_unique_across_partitions_even_past_the_append_function();
  }
  {
    SCOPED_TRACE("subscription_verify_and_anchor_see_the_whole_log");
    subscription_verify_and_anchor_see_the_whole_log();
  }
  {
    SCOPED_TRACE(
        "appends_past_the_last_range_land_in_the_default_partition_until_ensure_catches_up");
    appends_past_the_last_range_land_in_the_default_partition_until_ensure_catches_up();
  }
}

// Cold storage: another tablespace (stays attached), an archive schema (leaves the log) and back.
TEST(PartitionedLogTest, PartitionsMoveToAnotherTablespaceOrToAnArchiveAndBack) {
  {
    SCOPED_TRACE("a_partition_moves_to_another_tablespace_and_stays_readable");
    a_partition_moves_to_another_tablespace_and_stays_readable();
  }
  {
    SCOPED_TRACE("an_archived_partition_leaves_the_log_and_comes_back_whole");
    an_archived_partition_leaves_the_log_and_comes_back_whole();
  }
}

}  // namespace
