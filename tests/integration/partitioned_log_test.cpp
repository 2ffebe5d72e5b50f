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
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
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

// --- Stream heads (sql/0019) -------------------------------------------------------------------

// Each stream's head as annals.stream_heads holds it and as the log's last event gives it:
// (version, position, tombstone) pairs that must be equal.
using Head = std::tuple<std::int64_t, std::int64_t, bool>;
std::map<std::string, std::pair<Head, Head>> heads_and_last_events(const std::string& url) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  std::map<std::string, std::pair<Head, Head>> out;
  for (const auto& row : tx.exec("SELECT coalesce(h.stream_id, l.stream_id), h.stream_version, "
                                 "h.global_position, h.deleted, l.stream_version,"
                                 "       l.global_position, l.event_type = '$stream-deleted'"
                                 "  FROM annals.stream_heads h FULL JOIN"
                                 "       (SELECT DISTINCT ON (e.stream_id) e.* FROM annals.events e"
                                 "         ORDER BY e.stream_id, e.stream_version DESC) l ON "
                                 "l.stream_id = h.stream_id")) {
    const auto head = [&](int at) {
      return row[at].is_null() ? Head{-1, -1, false}
                               : Head{row[at].as<std::int64_t>(), row[at + 1].as<std::int64_t>(),
                                      row[at + 2].as<bool>()};
    };
    out[row[0].c_str()] = {head(1), head(4)};
  }
  return out;
}

// A plain store with events, its own database, dropped at the end.
class PlainDatabase : public annals::testing::ScratchDatabase {
 public:
  PlainDatabase() : ScratchDatabase("annals_heads") {}
};

void converting_a_store_with_events_fills_the_heads() {
  PlainDatabase db;
  const auto first_id = EventId::generate();
  {
    auto plain = annals::postgres::make_postgres_event_store({.connection_string = db.url()});
    plain->append(StreamId("conv-a"), ExpectedVersion::no_stream(),
                  {event("A", 1, first_id), event("A", 2), event("A", 3)});
    plain->append(StreamId("conv-b"), ExpectedVersion::no_stream(), {event("B", 1)});
    plain->delete_stream(StreamId("conv-b"), ExpectedVersion::exact(1));
    plain->append(StreamId("conv-c"), ExpectedVersion::no_stream(), {event("C", 1)});
  }
  annals::postgres::migrate(db.url(), {.partitioned_log = 2});
  auto heads = heads_and_last_events(db.url());
  ASSERT_EQ(heads.size(), 3u);
  for (const auto& [stream, pair] : heads) EXPECT_EQ(pair.first, pair.second) << stream;
  EXPECT_EQ(std::get<0>(heads["conv-a"].first), 3);
  EXPECT_TRUE(std::get<2>(heads["conv-b"].first));
  EXPECT_TRUE(annals::postgres::verify(db.url()).ok());

  // A log partitioned before sql/0019 (its 0017 triggers, no heads) is converted the same way
  // by annals.install_stream_heads, which that migration runs.
  EXPECT_EQ(attempt_committed(db.url(),
                              "DROP TABLE annals.stream_heads;"
                              " DROP TRIGGER events_set_chain ON annals.events;"
                              " DROP TRIGGER events_move_heads ON annals.events;"
                              " CREATE TRIGGER events_claim_id BEFORE INSERT ON annals.events"
                              "   FOR EACH ROW EXECUTE FUNCTION annals.claim_event_id();"
                              " CREATE TRIGGER events_set_chain BEFORE INSERT ON annals.events"
                              "   FOR EACH ROW WHEN (NEW.hash IS NULL)"
                              "   EXECUTE FUNCTION annals.set_event_chain()"),
            "");
  const auto old = annals::postgres::verify(db.url());  // partitioned, but no heads
  std::string messages;
  for (const auto& f : old.findings) messages += f.message + "\n";
  EXPECT_NE(messages.find("runs annals.set_event_chain() instead of "
                          "annals.set_partitioned_chain()"),
            std::string::npos)
      << messages;
  EXPECT_NE(messages.find("annals.stream_heads is missing"), std::string::npos) << messages;
  EXPECT_EQ(attempt_committed(db.url(), "SELECT annals.install_stream_heads()"), "");
  EXPECT_EQ(heads_and_last_events(db.url()), heads);
  const auto report = annals::postgres::verify(db.url());
  EXPECT_TRUE(report.ok()) << report.findings.at(0).message;

  // The converted streams go on from their heads; a re-send of a converted event is known.
  auto store = annals::postgres::make_postgres_event_store({.connection_string = db.url()});
  EXPECT_EQ(
      store->append(StreamId("conv-a"), ExpectedVersion::exact(3), {event("A", 4)}).first_version,
      4);
  EXPECT_THROW(store->append(StreamId("conv-b"), ExpectedVersion::any(), {event("B", 2)}),
               annals::StreamDeletedError);
  EXPECT_EQ(
      store->append(StreamId("conv-a"), ExpectedVersion::no_stream(), {event("A", 1, first_id)})
          .first_version,
      1);
  EXPECT_THROW(store->append(StreamId("conv-c"), ExpectedVersion::no_stream(), {event("C", 9)}),
               annals::ConcurrencyError);
  for (const auto& [stream, pair] : heads_and_last_events(db.url())) {
    EXPECT_EQ(pair.first, pair.second) << stream;
  }
}

void the_head_table_refuses_the_writer_and_the_owner_and_verify_compares_it() {
  auto store = writer_store();
  const std::string s = unique_stream("heads");
  store->append(StreamId(s), ExpectedVersion::no_stream(), {event("Opened", 1)});
  const std::string& writer = test_roles().writer_url;
  const std::string& admin = test_database_url();
  const std::string where = " WHERE stream_id = '" + s + "'";
  // The writer holds no privilege on the heads, not even SELECT.
  EXPECT_EQ(attempt(writer, "SELECT * FROM annals.stream_heads"), "42501");
  EXPECT_EQ(attempt(writer, "UPDATE annals.stream_heads SET stream_version = 9" + where), "42501");
  EXPECT_EQ(attempt(writer, "DELETE FROM annals.stream_heads" + where), "42501");
  EXPECT_EQ(attempt(writer, "TRUNCATE annals.stream_heads"), "42501");
  EXPECT_EQ(attempt(writer, "INSERT INTO annals.stream_heads VALUES ('" + unique_stream("forged") +
                                "', 7, 1, '1'::xid8, '\\x00', false)"),
            "42501");
  // The owner (here the superuser) is refused by the heads' triggers.
  EXPECT_EQ(attempt(admin, "UPDATE annals.stream_heads SET stream_version = 9" + where), "AN010");
  EXPECT_EQ(attempt(admin, "DELETE FROM annals.stream_heads" + where), "AN010");
  EXPECT_EQ(attempt(admin, "TRUNCATE annals.stream_heads"), "AN010");
  EXPECT_EQ(attempt(admin, "INSERT INTO annals.stream_heads VALUES ('" + unique_stream("forged") +
                               "', 7, 1, '1'::xid8, '\\x00', false)"),
            "AN010");
  // Rows with a hash (the owner's path, which takes no lock) must follow the head too: the
  // statement trigger refuses a row that does not, and a statement whose rows of one stream
  // skip a version.
  const auto row = [](const std::string& stream, int version) {
    return "('" + stream + "', " + std::to_string(version) +
           ", gen_random_uuid(), 'Forged', 1, '{}', '{}', now(), '\\x00')";
  };
  const std::string insert =
      "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
      " schema_version, data, metadata, recorded_at, hash) VALUES ";
  EXPECT_EQ(attempt(admin, insert + row(s, 3)), "23505");
  EXPECT_EQ(attempt(admin, insert + row(s, 1)), "23505");
  const std::string fresh = unique_stream("gap");
  EXPECT_EQ(attempt(admin, insert + row(fresh, 1) + ", " + row(fresh, 3)), "23505");
  EXPECT_EQ(attempt(admin, insert + row(fresh, 1) + ", " + row(fresh, 2)), "");
  // With the guard disabled the owner can change a head: verify names the guard and the head.
  EXPECT_EQ(attempt_committed(admin,
                              "ALTER TABLE annals.stream_heads DISABLE TRIGGER "
                              "stream_heads_refuse_change; UPDATE annals.stream_heads"
                              " SET deleted = true" +
                                  where),
            "");
  const auto report = annals::postgres::verify(test_roles().auditor_url);
  std::set<annals::postgres::FindingKind> kinds;
  for (const auto& f : report.findings) kinds.insert(f.kind);
  EXPECT_EQ(kinds, (std::set{annals::postgres::FindingKind::kGuardDisabled,
                             annals::postgres::FindingKind::kStreamHeadMismatch}));
  EXPECT_EQ(attempt_committed(admin, "UPDATE annals.stream_heads SET deleted = false" + where +
                                         "; ALTER TABLE annals.stream_heads ENABLE TRIGGER "
                                         "stream_heads_refuse_change"),
            "");
  const auto clean = annals::postgres::verify(test_roles().auditor_url);
  EXPECT_TRUE(clean.ok()) << clean.findings.at(0).message;
}

void resends_deletions_and_refusals_are_answered_from_heads_and_event_ids() {
  auto store = writer_store();
  const std::string s = unique_stream("resend");
  const auto first_id = EventId::generate();
  ensure();
  const auto first =
      store->append(StreamId(s), ExpectedVersion::no_stream(), {event("Opened", 1, first_id)});
  std::vector<NewEvent> batch;
  for (int i = 2; i <= 2 * kPartitionSize + 1; ++i) {
    batch.push_back(event("Batch", i, EventId::generate()));
  }
  ensure();
  const auto batched = store->append(StreamId(s), ExpectedVersion::exact(1), batch);
  ensure();
  ASSERT_NE(partition_at(first.position.sequence()), partition_at(batched.position.sequence()));
  // An exact re-send of an event in an older partition, single and batch; a changed re-send.
  EXPECT_EQ(
      store->append(StreamId(s), ExpectedVersion::any(), {event("Opened", 1, first_id)}).position,
      first.position);
  EXPECT_EQ(store->append(StreamId(s), ExpectedVersion::exact(1), batch).position,
            batched.position);
  EXPECT_THROW(store->append(StreamId(s), ExpectedVersion::any(), {event("Opened", 2, first_id)}),
               annals::IdempotencyError);
  // A refused single-event append leaves its id unclaimed: the same event is stored once the
  // expectation holds (0017's trigger claimed it before the refusal).
  const auto id = EventId::generate();
  const auto version = batched.last_version;
  EXPECT_THROW(store->append(StreamId(s), ExpectedVersion::exact(1), {event("Late", 1, id)}),
               annals::ConcurrencyError);
  EXPECT_EQ(store->append(StreamId(s), ExpectedVersion::exact(version), {event("Late", 1, id)})
                .first_version,
            version + 1);
  // A tombstone in the head refuses appends; reopening continues after it.
  ensure();
  store->delete_stream(StreamId(s), ExpectedVersion::exact(version + 1));
  EXPECT_THROW(store->append(StreamId(s), ExpectedVersion::any(), {event("Dead", 1)}),
               annals::StreamDeletedError);
  EXPECT_THROW(
      store->append(StreamId(s), ExpectedVersion::any(), {event("Dead", 1), event("Dead", 2)}),
      annals::StreamDeletedError);
  const auto reopened = store->append_multi({StreamAppend{.stream_id = StreamId(s),
                                                          .expected = ExpectedVersion::any(),
                                                          .events = {event("Again", 1)},
                                                          .reopen = true}});
  EXPECT_EQ(reopened.at(0).first_version, version + 3);
  EXPECT_EQ(store->read_stream(StreamId(s)).size(), static_cast<std::size_t>(version + 3));
}

// Backends of this database waiting for a lock while running a statement that starts so.
bool waiting(const std::string& query_prefix) {
  pqxx::connection c(test_database_url());
  pqxx::nontransaction tx(c);
  return tx.exec_params1(
               "SELECT count(*)::int FROM pg_stat_activity"
               " WHERE datname = current_database() AND wait_event_type = 'Lock'"
               "   AND starts_with(query, $1)",
               query_prefix)[0]
             .as<int>() > 0;
}

void wait_until_waiting(const std::string& query_prefix) {
  for (int i = 0; i < 3000 && !waiting(query_prefix); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(waiting(query_prefix)) << "nothing waits: " << query_prefix;
}

std::string append_sql(const std::string& stream, const std::string& expected) {
  return "SELECT count(*) FROM annals.append_events_partitioned(ARRAY['" + stream + "'], ARRAY[" +
         expected +
         "]::bigint[], ARRAY[1], ARRAY[gen_random_uuid()], ARRAY['T']::text[],"
         " ARRAY[1], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])";
}

void two_first_appends_to_one_new_stream_never_both_commit() {
  auto store = writer_store();
  // Through the store: the held first append locks the stream; the store's append waits and
  // then finds the stream there.
  {
    const std::string s = unique_stream("race");
    pqxx::connection holder(test_database_url());
    pqxx::work held(holder);
    held.exec(append_sql(s, "-2"));
    auto racer = std::async(std::launch::async, [&] {
      return store->append(StreamId(s), ExpectedVersion::no_stream(), {event("Second", 1)});
    });
    wait_until_waiting("INSERT INTO annals.events AS ev");
    held.commit();
    EXPECT_THROW(racer.get(), annals::ConcurrencyError);
  }
  // A path that takes no lock (a row inserted with its hash, as the owner may): the head's
  // INSERT waits for the held first append and then fails with 23505.
  {
    const std::string s = unique_stream("race");
    pqxx::connection holder(test_database_url());
    pqxx::work held(holder);
    held.exec(append_sql(s, "-2"));
    const std::string forged =
        "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
        " schema_version, data, metadata, recorded_at, hash) VALUES ('" +
        s + "', 1, gen_random_uuid(), 'Forged', 1, '{}', '{}', now(), '\\x00')";
    auto racer = std::async(std::launch::async,
                            [&] { return attempt_committed(test_database_url(), forged); });
    wait_until_waiting("INSERT INTO annals.events (stream_id");
    held.commit();
    EXPECT_EQ(racer.get(), "23505");
  }
}

void a_stream_is_never_appended_to_behind_a_younger_transaction() {
  auto store = writer_store();
  const std::string s = unique_stream("order");
  for (const bool batch_path : {true, false}) {
    SCOPED_TRACE(batch_path ? "annals.append_events_partitioned" : "the single-event insert");
    pqxx::connection older(test_database_url());
    pqxx::work tx(older);
    tx.exec(append_sql(unique_stream("elsewhere"), "-1"));  // takes its transaction id now
    store->append(StreamId(s), ExpectedVersion::any(), {event("Younger", 1)});
    try {
      tx.exec(batch_path ? append_sql(s, "-1")
                         : "INSERT INTO annals.events (stream_id, stream_version, event_id,"
                           " event_type, schema_version, data, metadata) VALUES ('" +
                               s + "', -1, gen_random_uuid(), 'T', 1, '{}', '{}')");
      ADD_FAILURE() << "an append behind a younger transaction was accepted";
    } catch (const pqxx::serialization_failure& e) {  // SQLSTATE 40001
      EXPECT_NE(std::string(e.what()).find("younger than this one"), std::string::npos);
    }
  }
  EXPECT_EQ(store->append(StreamId(s), ExpectedVersion::exact(2), {event("Later", 3)}).last_version,
            3);
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

// Stream heads (sql/0019): conversion fills them, the writer and the owner cannot change them
// and verify compares them with the log, re-sends found through annals.event_ids in older
// partitions, tombstones, a refused append's id, two first appends racing for one new stream,
// and the stream-order rule of sql/0018.
TEST(PartitionedLogTest, StreamHeadsKeepEveryGuaranteeOfTheAppendPath) {
  {
    SCOPED_TRACE("converting_a_store_with_events_fills_the_heads");
    converting_a_store_with_events_fills_the_heads();
  }
  {
    SCOPED_TRACE("the_head_table_refuses_the_writer_and_the_owner_and_verify_compares_it");
    the_head_table_refuses_the_writer_and_the_owner_and_verify_compares_it();
  }
  {
    SCOPED_TRACE("resends_deletions_and_refusals_are_answered_from_heads_and_event_ids");
    resends_deletions_and_refusals_are_answered_from_heads_and_event_ids();
  }
  {
    SCOPED_TRACE("two_first_appends_to_one_new_stream_never_both_commit");
    two_first_appends_to_one_new_stream_never_both_commit();
  }
  {
    SCOPED_TRACE("a_stream_is_never_appended_to_behind_a_younger_transaction");
    a_stream_is_never_appended_to_behind_a_younger_transaction();
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
