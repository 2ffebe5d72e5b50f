// PostgreSQL-only behaviour of PostgresEventStore: what the contract suite cannot
// express because it needs the server itself — a held-open writing transaction, killed
// backends, restored transaction ids, concurrent migrations.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "test_database.hpp"

namespace {

using annals::EventFilter;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::ReadAllOptions;
using annals::RecordedEvent;
using annals::StreamId;
using annals::testing::test_database_url;
using annals::testing::unique_stream;

std::unique_ptr<annals::EventStore> make_store(std::size_t pool_size = 4) {
  return annals::postgres::make_postgres_event_store(
      {.connection_string = test_database_url(), .pool_size = pool_size});
}

NewEvent event(const std::string& type, int n = 0) {
  return NewEvent{.type = type, .data = {{"n", n}}};
}

// The newest position of the whole log right now (to read only what a test appends after it).
Position log_end(annals::EventStore& store) {
  Position end;
  for (;;) {
    auto batch = store.read_all({.after = end, .max_count = 10000});
    if (batch.empty()) return end;
    end = batch.back().position;
  }
}

std::vector<std::string> streams_of(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.stream_id.value());
  return out;
}

// Decision 5: a transaction that wrote first but commits last must not be skipped. A reader
// (and a subscription) checkpointing positions must see nothing past the held transaction
// until it commits, then everything exactly once, in commit-safe order.
TEST(PostgresStoreTest, HeldWritingTransactionIsNeverSkipped) {
  auto store = make_store();
  const auto start = log_end(*store);
  const std::string category = "held" + unique_stream("c").substr(2, 8);
  const StreamId held(category + "-held");
  const StreamId later1(category + "-later1");
  const StreamId later2(category + "-later2");
  const EventFilter filter{.category = category};

  std::mutex mutex;
  std::vector<RecordedEvent> delivered;
  auto subscription = store->subscribe(
      {.after = start, .filter = filter, .poll_interval = std::chrono::milliseconds(50)},
      [&](const RecordedEvent& e) {
        std::lock_guard lock(mutex);
        delivered.push_back(e);
      });

  // Open a writing transaction through the store's own SQL function and keep it open.
  pqxx::connection holder(test_database_url());
  pqxx::work held_tx(holder);
  held_tx.exec_params(
      "SELECT * FROM annals.append_events(ARRAY[$1]::text[], ARRAY[-1]::bigint[], ARRAY[1],"
      " ARRAY[gen_random_uuid()], ARRAY['Held']::text[], ARRAY[1], ARRAY['{}'::jsonb],"
      " ARRAY['{}'::jsonb])",
      held.value());

  // Later transactions commit while it is open.
  const auto r1 = store->append(later1, ExpectedVersion::no_stream(), {event("Later", 1)});
  const auto r2 = store->append(later2, ExpectedVersion::no_stream(), {event("Later", 2)});
  EXPECT_LT(r1.position, r2.position);

  // Readers see nothing past the held transaction: the committed later events are held back.
  EXPECT_TRUE(store->read_all({.after = start, .filter = filter}).empty());
  EXPECT_LT(store->head_position(), r1.position);
  // Yet the log reaches both positions (their appends returned them): a read API may wait.
  EXPECT_TRUE(annals::postgres::log_reaches(*store, r1.position));
  EXPECT_TRUE(annals::postgres::log_reaches(*store, r2.position));
  EXPECT_FALSE(annals::postgres::log_reaches(
      *store, Position(r2.position.commit() + 1'000'000, r2.position.sequence())))
      << "a position no append returned";
  ASSERT_FALSE(subscription->wait_for(r1.position, std::chrono::milliseconds(300)));
  {
    std::lock_guard lock(mutex);
    EXPECT_TRUE(delivered.empty());
  }

  held_tx.commit();

  // Wait for the subscription first: another test process may hold an older transaction for a
  // moment, and once r2 is settled for the subscription it is settled for read_all too (the
  // horizon never moves back).
  ASSERT_TRUE(subscription->wait_for(r2.position, std::chrono::seconds(10)));
  const auto all = store->read_all({.after = start, .filter = filter});
  EXPECT_EQ(streams_of(all),
            (std::vector<std::string>{held.value(), later1.value(), later2.value()}));
  subscription->stop();
  std::lock_guard lock(mutex);
  EXPECT_EQ(streams_of(delivered), streams_of(all));
  EXPECT_EQ(subscription->stop_reason(), nullptr);
}

// Readers order the log by transaction id, so a transaction that wrote elsewhere first must not
// append to a stream after a younger transaction did: its event would sort before the stream's
// previous one. Both insert paths refuse with 40001 (serialization failure), which the store
// retries in a new transaction; here the older transaction is held open by hand.
TEST(PostgresStoreTest, AStreamIsNeverAppendedToBehindAYoungerTransaction) {
  auto store = make_store();
  const std::string category = "order" + unique_stream("c").substr(2, 8);
  const StreamId stream(category + "-x");
  const auto append_sql = [](const std::string& id) {
    return "SELECT count(*) FROM annals.append_events(ARRAY['" + id +
           "'], ARRAY[-1]::bigint[], ARRAY[1], ARRAY[gen_random_uuid()], ARRAY['T']::text[],"
           " ARRAY[1], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])";
  };
  const auto single_sql = [](const std::string& id) {
    return "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
           " schema_version, data, metadata) VALUES ('" +
           id + "', -1, gen_random_uuid(), 'T', 1, '{}', '{}')";
  };
  for (const bool batch_path : {true, false}) {
    SCOPED_TRACE(batch_path ? "annals.append_events" : "the single-event insert");
    pqxx::connection older(test_database_url());
    pqxx::work tx(older);
    tx.exec(append_sql(category + "-elsewhere"));  // takes its transaction id now
    store->append(stream, ExpectedVersion::any(), {event("Younger")});  // a younger one commits
    try {
      tx.exec(batch_path ? append_sql(stream.value()) : single_sql(stream.value()));
      FAIL() << "an append behind a younger transaction was accepted";
    } catch (const pqxx::serialization_failure& e) {  // SQLSTATE 40001
      EXPECT_NE(std::string(e.what()).find("younger than this one"), std::string::npos);
    }
  }
  // A new transaction appends after it, and the log has the stream in version order.
  const auto last = store->append(stream, ExpectedVersion::exact(2), {event("Later")});
  std::vector<std::int64_t> versions;
  for (int i = 0; i < 500 && versions.size() < 3; ++i) {
    versions.clear();
    for (const auto& e : store->read_all({.filter = {.category = category}})) {
      if (e.stream_id == stream) versions.push_back(e.version);
    }
    if (versions.size() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(last.last_version, 3);
}

TEST(PostgresStoreTest, LogReachesRefusesAStoreThatIsNotPostgres) {
  auto memory = annals::make_in_memory_event_store();
  EXPECT_THROW(static_cast<void>(annals::postgres::log_reaches(*memory, Position(1, 1))),
               annals::InvalidArgumentError);
}

// The store survives its backends being killed (pg_terminate_backend) between calls: broken
// connections are replaced and reads and appends go on, a subscription keeps delivering.
TEST(PostgresStoreTest, SurvivesTerminatedBackends) {
  auto store = make_store(2);
  const StreamId stream(unique_stream("kill"));
  const auto first = store->append(stream, ExpectedVersion::no_stream(), {event("A")});
  ASSERT_EQ(store->read_stream(stream).size(), 1U);

  std::atomic<int> seen{0};
  auto subscription = store->subscribe({.after = first.position,
                                        .filter = {.category = std::string(stream.category())},
                                        .poll_interval = std::chrono::milliseconds(100)},
                                       [&](const RecordedEvent&) { seen.fetch_add(1); });

  const auto kill_all = [] {
    pqxx::connection admin(annals::testing::server_url());
    pqxx::nontransaction tx(admin);
    const auto killed = tx.exec_params(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid()",
        pqxx::connection(test_database_url()).dbname());
    return killed.size();
  };
  EXPECT_GE(kill_all(), 2U);  // the pool's connection(s) and the LISTEN connection

  const auto result = store->append(stream, ExpectedVersion::exact(1), {event("B")});
  EXPECT_EQ(result.last_version, 2);
  EXPECT_EQ(store->read_stream(stream).size(), 2U);
  EXPECT_EQ(store->stream_version(stream), 2);
  EXPECT_TRUE(subscription->wait_for(result.position, std::chrono::seconds(10)));
  EXPECT_EQ(seen.load(), 1);

  kill_all();
  const auto again = store->append(stream, ExpectedVersion::exact(2), {event("C")});
  EXPECT_EQ(again.last_version, 3);
  EXPECT_TRUE(subscription->wait_for(again.position, std::chrono::seconds(10)));
  EXPECT_EQ(seen.load(), 2);
  EXPECT_TRUE(subscription->is_running());
}

// Stream ids and payloads with SQL and array-literal metacharacters and unicode are data,
// never code: they round-trip verbatim.
TEST(PostgresStoreTest, MetacharactersAndUnicodeRoundTripVerbatim) {
  auto store = make_store();
  const std::string suffix = unique_stream("x").substr(2);
  const std::vector<std::string> ids = {
      "'; DROP TABLE annals.events; --" + suffix,
      "quote\"back\\slash" + suffix,
      "{curly,comma}" + suffix,
      "NULL" + suffix,
      "  spaces  " + suffix,
      "$1::text" + suffix,
      "Ωμέγα-日本語-🚀" + suffix,
      "percent%_under" + suffix,
  };
  for (const auto& id : ids) {
    const StreamId stream(id);
    const NewEvent e{.type = "Typ\"e{,}'\\" + suffix,
                     .data = {{"text", id}, {"nested", {{"k\"", "v\\"}}}},
                     .metadata = {{"note", "it's \"fine\""}}};
    store->append(stream, ExpectedVersion::no_stream(), {e});
    const auto events = store->read_stream(stream);
    ASSERT_EQ(events.size(), 1U) << id;
    EXPECT_EQ(events[0].stream_id.value(), id);
    EXPECT_EQ(events[0].type, e.type);
    EXPECT_EQ(events[0].data, e.data);
    EXPECT_EQ(events[0].metadata, e.metadata);
    EXPECT_EQ(store->stream_version(stream), 1);
  }
  pqxx::connection check(test_database_url());
  pqxx::nontransaction tx(check);
  EXPECT_TRUE(tx.exec1("SELECT to_regclass('annals.events') IS NOT NULL")[0].as<bool>());
}

// Decision 8: stored events cannot be changed, whatever the client.
TEST(PostgresStoreTest, EventsAreAppendOnly) {
  auto store = make_store();
  const StreamId stream(unique_stream("immutable"));
  store->append(stream, ExpectedVersion::any(), {event("A")});
  pqxx::connection c(test_database_url());
  for (const std::string statement : {"UPDATE annals.events SET data = '{}' WHERE stream_id = $1",
                                      "DELETE FROM annals.events WHERE stream_id = $1"}) {
    pqxx::work tx(c);
    try {
      tx.exec_params(statement, stream.value());
      FAIL() << statement << " was accepted";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "AN010") << statement;
    }
  }
  pqxx::work tx(c);
  try {
    tx.exec("TRUNCATE annals.events");
    FAIL() << "TRUNCATE was accepted";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "AN010");
  }
}

// The hash chain of decision 8 links each event to the previous one of its stream.
TEST(PostgresStoreTest, AppendsChainHashesPerStream) {
  auto store = make_store();
  const StreamId stream(unique_stream("chain"));
  store->append(stream, ExpectedVersion::no_stream(), {event("A", 1), event("B", 2)});
  store->append(stream, ExpectedVersion::exact(2), {event("C", 3)});
  pqxx::connection c(test_database_url());
  pqxx::nontransaction tx(c);
  const auto rows = tx.exec_params(
      "SELECT e.hash = annals.event_hash(coalesce(lag(e.hash) OVER w, '\\x'::bytea), e.event_id,"
      " e.stream_id, e.stream_version, e.event_type, e.schema_version, e.data, e.metadata,"
      " e.recorded_at)"
      " FROM annals.events e WHERE e.stream_id = $1 WINDOW w AS (ORDER BY e.stream_version)"
      " ORDER BY e.stream_version",
      stream.value());
  ASSERT_EQ(rows.size(), 3U);
  for (const auto& row : rows) EXPECT_TRUE(row[0].as<bool>());
}

std::string fresh_database(const std::string& name) {
  pqxx::connection admin(annals::testing::server_url());
  pqxx::nontransaction tx(admin);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  const auto& base = annals::testing::server_url();
  const auto slash = base.rfind('/');
  return base.substr(0, slash + 1) + name;
}

// Writes one event straight into annals.events, past the store and its checks, with its
// transaction id, stream id and type given as SQL expressions.
void insert_past_the_store(const std::string& url, const std::string& transaction_id_sql,
                           const std::string& stream_id_sql, const std::string& type_sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  tx.exec(
      "INSERT INTO annals.events (transaction_id, stream_id, stream_version, event_id,"
      " event_type, schema_version, data, metadata, recorded_at, hash)"
      " VALUES (" +
      transaction_id_sql + ", " + stream_id_sql + ", 1, gen_random_uuid(), " + type_sql +
      ", 1, '{}', '{}', now(), '\\x00')");
}

void drop_database(const std::string& name) {
  pqxx::connection admin(annals::testing::server_url());
  pqxx::nontransaction tx(admin);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
}

// Migrations are safe to run twice and from several clients at once.
TEST(PostgresStoreTest, MigrationsAreIdempotentAndConcurrent) {
  const std::string name = "annals_mig_" + unique_stream("m").substr(2, 10);
  const auto url = fresh_database(name);
  EXPECT_FALSE(annals::postgres::migration_status(url).front().applied);
  EXPECT_THROW(annals::postgres::make_postgres_event_store({.connection_string = url}),
               annals::NotFoundError);

  std::atomic<std::size_t> applied{0};
  std::vector<std::thread> runners;
  for (int i = 0; i < 4; ++i) {
    runners.emplace_back([&] { applied += annals::postgres::migrate(url).size(); });
  }
  for (auto& t : runners) t.join();
  const auto status = annals::postgres::migration_status(url);
  EXPECT_EQ(applied.load(), status.size());
  for (const auto& m : status) EXPECT_TRUE(m.applied) << m.name;
  EXPECT_TRUE(annals::postgres::migrate(url).empty());
  drop_database(name);
}

// A database whose stored transaction ids are ahead of the server's (a dump restored into a
// new cluster) is refused, never silently misordered (decision 5).
TEST(PostgresStoreTest, RefusesStoredTransactionIdsAheadOfTheServer) {
  const std::string name = "annals_restore_" + unique_stream("r").substr(2, 10);
  const auto url = fresh_database(name);
  annals::postgres::migrate(url);
  insert_past_the_store(url, "'9000000000'::xid8", "'restored-1'", "'Restored'");
  EXPECT_THROW(annals::postgres::make_postgres_event_store({.connection_string = url}),
               annals::CorruptionError);
  drop_database(name);
}

// An unreachable server is a typed, retryable error.
TEST(PostgresStoreTest, UnreachableServerIsUnavailable) {
  try {
    auto store = annals::postgres::make_postgres_event_store(
        {.connection_string = "postgresql://annals@127.0.0.1:1/annals?connect_timeout=2",
         .max_retries_on_broken_connection = 0});
    FAIL() << "opened a store on a closed port";
  } catch (const annals::UnavailableError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_EQ(e.code(), annals::ErrorCode::kUnavailable);
  }
}

// JSON PostgreSQL cannot store (a NUL character in jsonb) is refused as invalid input.
TEST(PostgresStoreTest, NulCharacterInDataIsInvalidArgument) {
  auto store = make_store();
  const StreamId stream(unique_stream("nul"));
  EXPECT_THROW(store->append(stream, ExpectedVersion::any(),
                             {NewEvent{.type = "T", .data = {{"s", std::string("a\0b", 3)}}}}),
               annals::InvalidArgumentError);
  EXPECT_EQ(store->stream_version(stream), std::nullopt);
}

}  // namespace

namespace {

// Decision 5's cost made visible: the transaction that holds readers back is reported.
TEST(PostgresStoreTest, ReadHorizonReportsTheOldestOpenWritingTransaction) {
  pqxx::connection holder(test_database_url());
  pqxx::work held(holder);
  held.exec("SELECT pg_current_xact_id()");  // takes a transaction id, as any write does
  const auto holder_pid = holder.backendpid();

  const auto horizon = annals::postgres::read_horizon(test_database_url());
  ASSERT_TRUE(horizon.oldest.has_value());
  // Another test process may hold an even older one; ours must then not be the oldest.
  if (horizon.oldest->pid == holder_pid) {
    EXPECT_EQ(horizon.oldest->state, "idle in transaction");
    EXPECT_EQ(horizon.oldest->database, holder.dbname());
    EXPECT_EQ(horizon.oldest->query, "SELECT pg_current_xact_id()");
  }
  held.abort();
}

}  // namespace

namespace {

// Regression: the global log was once ordered by the text form of the transaction id (an
// ORDER BY that named the `transaction_id::text` output column), so 10 sorted before 9 and
// every page was a full sort. Transaction ids that differ in digit count must read in numeric
// order. Rows are inserted directly with small, long-settled transaction ids.
TEST(PostgresStoreTest, GlobalLogOrdersTransactionIdsNumerically) {
  auto store = make_store();
  const std::string category = "numeric" + unique_stream("n").substr(2, 8);
  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    for (const auto& [xid, stream] :
         std::vector<std::pair<std::string, std::string>>{{"10", category + "-ten"},
                                                          {"9", category + "-nine"},
                                                          {"100", category + "-hundred"}}) {
      tx.exec_params(
          "INSERT INTO annals.events (transaction_id, stream_id, stream_version, event_id,"
          " event_type, schema_version, data, metadata, recorded_at, hash)"
          " VALUES ($1::xid8, $2, 1, gen_random_uuid(), 'Crafted', 1, '{}', '{}', now(), '\\x00')",
          xid, stream);
    }
    tx.commit();
  }
  const auto events = store->read_all({.filter = {.category = category}});
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[0].stream_id.value(), category + "-nine");
  EXPECT_EQ(events[1].stream_id.value(), category + "-ten");
  EXPECT_EQ(events[2].stream_id.value(), category + "-hundred");
  EXPECT_EQ(events[0].position.commit(), 9U);
  EXPECT_EQ(events[2].position.commit(), 100U);
  // Continuing after the first returns the other two, in order.
  const auto rest =
      store->read_all({.after = events[0].position, .filter = {.category = category}});
  ASSERT_EQ(rest.size(), 2U);
  EXPECT_EQ(rest[0].position, events[1].position);
}

}  // namespace

namespace {

// Decision 6: appends wake subscribers. With a poll interval of a minute, only a NOTIFY can
// deliver these events within the wait, in both notification modes.
void expect_live_wake_up(bool notify_in_transaction) {
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url(),
                                                   .pool_size = 2,
                                                   .notify_in_transaction = notify_in_transaction});
  const StreamId stream(unique_stream("wake"));
  std::atomic<int> seen{0};
  auto subscription = store->subscribe({.after = log_end(*store),
                                        .filter = {.category = std::string(stream.category())},
                                        .poll_interval = std::chrono::minutes(1)},
                                       [&](const RecordedEvent&) { seen.fetch_add(1); });
  // Let the subscription reach its first wait: it is live once a read came back short. On a
  // loaded machine its thread may not run for a while, so wait on a deadline, not a count.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!subscription->is_live() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(subscription->is_live());

  const auto one = store->append(stream, ExpectedVersion::no_stream(), {event("Single")});
  ASSERT_TRUE(subscription->wait_for(one.position, std::chrono::seconds(20)));
  const auto batch =
      store->append(stream, ExpectedVersion::exact(1), {event("Batch", 1), event("Batch", 2)});
  ASSERT_TRUE(subscription->wait_for(batch.position, std::chrono::seconds(20)));
  EXPECT_EQ(seen.load(), 3);
}

TEST(PostgresStoreTest, AppendsWakeSubscribersAfterCommit) { expect_live_wake_up(false); }

TEST(PostgresStoreTest, AppendsWakeSubscribersFromTheirTransaction) { expect_live_wake_up(true); }

}  // namespace

namespace {

// The number of server connections whose application_name is `name`.
std::size_t connections_named(const std::string& name) {
  pqxx::connection admin(annals::testing::server_url());
  pqxx::nontransaction tx(admin);
  return tx
      .exec_params1("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name)[0]
      .as<std::size_t>();
}

// Appends and reads (which stream their rows) share the store's pool: threads that append and
// read at once all succeed, and the store keeps at most pool_size connections open, plus the
// one that sends notifications after commits. (pg_stat_activity lists a closed connection until
// its backend has exited, so the count is read once such ones are gone, within a deadline.)
TEST(PostgresStoreTest, AppendsAndReadsStayWithinPoolSize) {
  const std::string name = "annals_pool_" + unique_stream("p").substr(2, 10);
  const auto url = fresh_database(name);
  annals::postgres::migrate(url);
  const std::string application = "annals-pool-test-" + name;
  constexpr std::size_t kPoolSize = 2;
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = url + "?application_name=" + application, .pool_size = kPoolSize});

  std::vector<std::thread> workers;
  for (int w = 0; w < 6; ++w) {
    workers.emplace_back([&, w] {
      const StreamId stream("pool-" + std::to_string(w));
      for (int i = 0; i < 40; ++i) {
        store->append(stream, ExpectedVersion::exact(i), {event("E", i)});
        EXPECT_EQ(store->read_stream(stream).size(), static_cast<std::size_t>(i + 1));
        // Settled events only: another test process may hold the read horizon back.
        EXPECT_LE(store->read_all({.max_count = 20}).size(), 20U);
      }
    });
  }
  for (auto& t : workers) t.join();
  for (int w = 0; w < 6; ++w) {
    EXPECT_EQ(store->stream_version(StreamId("pool-" + std::to_string(w))), 40);
  }
  std::size_t open = connections_named(application);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (open > kPoolSize + 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    open = connections_named(application);
  }
  EXPECT_GE(open, 1U);
  EXPECT_LE(open, kPoolSize + 1);
  store.reset();
  drop_database(name);
}

// A read that fails while decoding (here: a stored stream id the store refuses, written past
// the store with plain SQL) reports the failure and leaves its connection ready: the next read
// on the same connection returns exactly its own rows, none of the failed read's.
// A row the client cannot decode (a stream id it refuses, stored by the schema's owner after
// dropping the CHECK constraint of sql/0007) is delivered marked in the middle of a streamed
// read, and the read goes on; the connection serves the next reads.
TEST(PostgresStoreTest, ReadThroughAnUndecodableRowLeavesItsConnectionUsable) {
  const std::string name = "annals_decode_" + unique_stream("d").substr(2, 10);
  const auto url = fresh_database(name);
  annals::postgres::migrate(url);
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = url, .pool_size = 1});
  const StreamId good("good-1");
  store->append(good, ExpectedVersion::no_stream(), {event("A", 1)});
  {
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    tx.exec("ALTER DOMAIN annals.stream_id DROP CONSTRAINT events_stream_id_check");
  }
  insert_past_the_store(url, "pg_current_xact_id()", "'bad' || chr(1)", "'Bad'");
  Position last;
  for (int i = 2; i <= 300; ++i) {
    last = store->append(good, ExpectedVersion::exact(i - 1), {event("A", i)}).position;
  }
  // The global log shows settled events only; a transaction another test process holds open
  // keeps them back for a while.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (store->head_position() < last && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(store->head_position() < last);

  const auto all = store->read_all({});
  ASSERT_EQ(all.size(), 301U);
  ASSERT_TRUE(all[1].is_undecodable());
  EXPECT_EQ(all[1].decode_failure->stream_id, std::string("bad\x01"));
  EXPECT_FALSE(all[2].is_undecodable());
  const auto events = store->read_stream(good, {.from = 2, .max_count = 3});
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[0].version, 2);
  EXPECT_EQ(events[2].data["n"], 4);
  EXPECT_EQ(store->read_all({.filter = {.category = "good"}}).size(), 300U);
  store.reset();
  drop_database(name);
}

}  // namespace
