// Least privilege (ARCHITECTURE decision 8, docs/security.md): the role layout of
// `annals migrate --roles`, attacked statement by statement as each role, and the store used
// through the writer role the way an application runs.
//
// Every row of kAttempts is one statement tried as the writer, the reader, the auditor and the
// owner, with the outcome the layout promises: allowed, denied by privileges (42501), or refused
// by the append-only trigger (AN010). Statements run in a transaction that is rolled back, so
// the rows do not depend on each other.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/postgres/verify.hpp"
#include "db_error.hpp"
#include "test_database.hpp"
#include "test_roles.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::testing::test_roles;
using annals::testing::unique_stream;

// The SQLSTATE of a refused statement, as the driver layer's libpqxx boundary reads it
// (libpqxx 6.4 drops 42501 from insufficient_privilege).
std::string state_of(const pqxx::sql_error& e) {
  return annals::postgres::detail::to_db_error(e).sqlstate();
}

enum class Outcome {
  kAllowed,  // the statement ran
  kDenied,   // SQLSTATE 42501: privileges (or "must be owner")
  kRefused,  // SQLSTATE AN010: the append-only trigger
};

const char* name_of(Outcome o) {
  switch (o) {
    case Outcome::kAllowed:
      return "allowed";
    case Outcome::kDenied:
      return "denied (42501)";
    case Outcome::kRefused:
      return "refused by the append-only trigger (AN010)";
  }
  return "?";
}

constexpr auto A = Outcome::kAllowed;
constexpr auto D = Outcome::kDenied;
constexpr auto R = Outcome::kRefused;

// A stream with two events, appended by the superuser, that the statements below aim at.
const std::string& target_stream() {
  static const std::string stream = [] {
    auto store =
        annals::postgres::make_postgres_event_store({.connection_string = test_roles().admin_url});
    const std::string id = unique_stream("target");
    store->append(StreamId(id), ExpectedVersion::no_stream(),
                  {NewEvent{.type = "Opened", .data = {{"owner", "Ada"}}},
                   NewEvent{.type = "Deposited", .data = {{"amount", 10}}}});
    pqxx::connection c(test_roles().admin_url);
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO annals.snapshots (stream_id, stream_version, schema_version, state)"
        " VALUES ($1, 2, 1, '{\"balance\": 10}')",
        id);
    tx.exec(
        "INSERT INTO annals.projections (name) VALUES ('security-test') ON CONFLICT DO NOTHING");
    tx.commit();
    return id;
  }();
  return stream;
}

// One statement ($1 = the target stream id, when used) and its outcome for each role.
struct Attempt {
  const char* what;
  const char* sql;
  Outcome writer, reader, auditor, owner;
};

// The forged-values inserts: the attacks. A backdated transaction id sorts below every
// projection checkpoint; a huge one makes stores refuse to open; a hash from annals.event_hash
// would pass a chain check; an explicit position would reorder the log.
constexpr const char* kForgedBackdated =
    "INSERT INTO annals.events (transaction_id, stream_id, stream_version, event_id, event_type,"
    " schema_version, data, metadata, recorded_at, hash)"
    " SELECT '3'::xid8, $1::text, 3, gen_random_uuid(), 'Deposited', 1, '{\"amount\": 1}', '{}',"
    "  now() - interval '1 year', annals.event_hash(e.hash, gen_random_uuid(), $1::text, 3,"
    "  'Deposited', 1, '{\"amount\": 1}', '{}', now() - interval '1 year')"
    " FROM annals.events e WHERE e.stream_id = $1::text AND e.stream_version = 2";
constexpr const char* kForgedHugeTransactionId =
    "INSERT INTO annals.events (transaction_id, stream_id, stream_version, event_id,"
    " event_type, schema_version, data, metadata) VALUES ('9000000000000000000', $1, 3,"
    " gen_random_uuid(), 'Deposited', 1, '{}', '{}')";
constexpr const char* kForgedTime =
    "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
    " schema_version, data, metadata, recorded_at) VALUES ($1, 3, gen_random_uuid(),"
    " 'Deposited', 1, '{}', '{}', '2000-01-01')";
constexpr const char* kForgedHash =
    "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
    " schema_version, data, metadata, hash) VALUES ($1, 3, gen_random_uuid(), 'Deposited',"
    " 1, '{}', '{}', '\\x00')";
constexpr const char* kForgedPosition =
    "INSERT INTO annals.events (global_position, stream_id, stream_version, event_id,"
    " event_type, schema_version, data, metadata) OVERRIDING SYSTEM VALUE VALUES (1, $1, 3,"
    " gen_random_uuid(), 'Deposited', 1, '{}', '{}')";

const std::vector<Attempt>& attempts() {
  static const std::vector<Attempt> list = {
      // Reading.
      {"SELECT events", "SELECT count(*) FROM annals.events WHERE stream_id = $1", A, A, A, A},
      {"SELECT streams view", "SELECT * FROM annals.streams WHERE stream_id = $1", A, A, A, A},
      {"SELECT projections status", "SELECT count(*) FROM annals.projections", A, A, A, A},
      {"SELECT dead letters", "SELECT count(*) FROM annals.projection_dead_letters", A, A, A, A},
      {"SELECT snapshots", "SELECT count(*) FROM annals.snapshots", A, D, A, A},
      // Appending through the store's two paths.
      {"INSERT the event's own columns",
       "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
       " schema_version, data, metadata) VALUES ($1, 3, gen_random_uuid(), 'Deposited', 1,"
       " '{}', '{}')",
       A, D, D, A},
      {"append_events",
       "SELECT * FROM annals.append_events(ARRAY[$1], ARRAY[2]::bigint[], ARRAY[1],"
       " ARRAY[gen_random_uuid()], ARRAY['Deposited'], ARRAY[1], ARRAY['{}'::jsonb],"
       " ARRAY['{}'::jsonb])",
       A, D, D, A},
      // Choosing the values the store vouches for.
      {"INSERT with a backdated transaction id and an event_hash hash", kForgedBackdated, D, D, D,
       A},
      {"INSERT with a huge transaction id", kForgedHugeTransactionId, D, D, D, A},
      {"INSERT with a chosen recorded_at", kForgedTime, D, D, D, A},
      {"INSERT with a chosen hash", kForgedHash, D, D, D, A},
      {"INSERT with a chosen global position", kForgedPosition, D, D, D, A},
      // Changing history.
      {"UPDATE events", "UPDATE annals.events SET data = '{}' WHERE stream_id = $1", D, D, D, R},
      {"DELETE events", "DELETE FROM annals.events WHERE stream_id = $1", D, D, D, R},
      {"TRUNCATE events", "TRUNCATE annals.events", D, D, D, R},
      // Switching the guards off.
      {"DISABLE TRIGGER", "ALTER TABLE annals.events DISABLE TRIGGER events_refuse_update_delete",
       D, D, D, A},
      {"ENABLE REPLICA TRIGGER",
       "ALTER TABLE annals.events ENABLE REPLICA TRIGGER events_refuse_update_delete", D, D, D, A},
      {"DISABLE the chain trigger", "ALTER TABLE annals.events DISABLE TRIGGER events_set_chain", D,
       D, D, A},
      {"DROP TRIGGER", "DROP TRIGGER events_refuse_truncate ON annals.events", D, D, D, A},
      {"CREATE TRIGGER on events",
       "CREATE TRIGGER sneak BEFORE INSERT ON annals.events FOR EACH ROW"
       " EXECUTE FUNCTION annals.set_event_chain()",
       D, D, D, A},
      {"ALTER COLUMN ... DROP DEFAULT",
       "ALTER TABLE annals.events ALTER COLUMN transaction_id DROP DEFAULT", D, D, D, A},
      {"SET session_replication_role = replica", "SET LOCAL session_replication_role = replica", D,
       D, D, D},
      // Replacing the store's functions.
      {"CREATE OR REPLACE FUNCTION annals.event_hash",
       "CREATE OR REPLACE FUNCTION annals.event_hash(p_previous bytea, p_event_id uuid,"
       " p_stream_id text, p_stream_version bigint, p_event_type text, p_schema_version integer,"
       " p_data jsonb, p_metadata jsonb, p_recorded_at timestamptz) RETURNS bytea"
       " LANGUAGE sql STABLE AS 'SELECT ''\\x00''::bytea'",
       D, D, D, A},
      {"CREATE OR REPLACE FUNCTION annals.refuse_event_change",
       "CREATE OR REPLACE FUNCTION annals.refuse_event_change() RETURNS trigger"
       " LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'",
       D, D, D, A},
      {"CREATE OR REPLACE FUNCTION annals.set_event_chain",
       "CREATE OR REPLACE FUNCTION annals.set_event_chain() RETURNS trigger"
       " LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
       D, D, D, A},
      {"ALTER FUNCTION annals.append_events SECURITY INVOKER",
       "ALTER FUNCTION annals.append_events(text[], bigint[], integer[], uuid[], text[],"
       " integer[], jsonb[], jsonb[], boolean, boolean[]) SECURITY INVOKER",
       D, D, D, A},
      {"CREATE FUNCTION in schema annals",
       "CREATE FUNCTION annals.extra() RETURNS int LANGUAGE sql AS 'SELECT 1'", D, D, D, A},
      // Snapshots and projection checkpoints: the writer's to keep, nobody else's.
      {"UPDATE snapshots", "UPDATE annals.snapshots SET state = '{\"balance\": 1000000}'", A, D, D,
       A},
      {"INSERT snapshots",
       "INSERT INTO annals.snapshots (stream_id, stream_version, schema_version, state)"
       " VALUES ($1 || '-copy', 1, 1, '{}')",
       A, D, D, A},
      {"UPDATE projection checkpoints",
       "UPDATE annals.projections SET checkpoint_position = 0, fencing_token = fencing_token + 1",
       A, D, D, A},
      {"DELETE dead letters", "DELETE FROM annals.projection_dead_letters", A, D, D, A},
      {"UPDATE rebuild requests", "UPDATE annals.projection_rebuilds SET state = 'done'", A, D, D,
       A},
      // Stream retention rules (sql/0014): the writer sets them, everyone reads them.
      {"SELECT stream metadata", "SELECT count(*) FROM annals.stream_metadata", A, A, A, A},
      {"INSERT stream metadata",
       "INSERT INTO annals.stream_metadata (stream_id, max_count) VALUES ($1, 5)"
       " ON CONFLICT (stream_id) DO UPDATE SET max_count = EXCLUDED.max_count",
       A, D, D, A},
      {"DELETE stream metadata", "DELETE FROM annals.stream_metadata WHERE stream_id = $1", A, D, D,
       A},
      {"UPDATE the role layout", "UPDATE annals.role_layout SET writer_role = 'intruder'", D, D, D,
       A},
      {"INSERT schema_migrations",
       "INSERT INTO annals.schema_migrations (name) VALUES ('9999_fake')", D, D, D, A},
      // Read-model tables live in the read-model schema, where only the writer may create.
      {"CREATE TABLE in the read-model schema", "CREATE TABLE public.security_rm (id int)", A, D, D,
       D},
      {"CREATE TABLE in schema annals", "CREATE TABLE annals.security_rm (id int)", D, D, D, A},
      {"configure_roles", "SELECT annals.configure_roles('a_o', 'a_w', 'a_r', 'a_a', NULL)", D, D,
       D, D},
      // Subject keys (sql/0015, docs/personal-data.md): the writer reads and creates keys and
      // forgets through annals.forget_subject only; the reader and the auditor see ciphertext.
      {"SELECT subject keys", "SELECT count(*) FROM annals.subject_keys", A, D, D, A},
      {"INSERT a subject key",
       "INSERT INTO annals.subject_keys (key_id, subject, key_material, wrapping)"
       " VALUES (gen_random_uuid(), $1, decode(repeat('ab', 32), 'hex'), 'none')",
       A, D, D, A},
      {"UPDATE subject keys (restore a forgotten key)",
       "UPDATE annals.subject_keys SET key_material = decode(repeat('ab', 32), 'hex'),"
       " forgotten_at = NULL",
       D, D, D, A},
      {"DELETE subject keys", "DELETE FROM annals.subject_keys", D, D, D, A},
      {"forget_subject", "SELECT * FROM annals.forget_subject($1)", A, D, D, A},
  };
  return list;
}

// Runs `sql` ($1 = the target stream) in a transaction that is rolled back, as `url`'s role
// (or, with `role`, after SET LOCAL ROLE). Returns empty on success, else the SQLSTATE.
std::optional<std::string> attempt(const std::string& url, const std::optional<std::string>& role,
                                   const std::string& sql) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  try {
    if (role) tx.exec_params("SELECT set_config('role', $1, true)", *role);
    if (sql.find("$1") != std::string::npos) {
      tx.exec_params(sql, target_stream());
    } else {
      tx.exec(sql);
    }
  } catch (const pqxx::sql_error& e) {
    return state_of(e);
  }
  tx.abort();
  return std::nullopt;
}

Outcome outcome_of(const std::optional<std::string>& state, const std::string& context) {
  if (!state) return Outcome::kAllowed;
  if (*state == "42501") return Outcome::kDenied;
  if (*state == "AN010") return Outcome::kRefused;
  ADD_FAILURE() << context << ": unexpected SQLSTATE " << *state;
  return Outcome::kAllowed;
}

void check_matrix(const char* role_name, const std::string& url,
                  const std::optional<std::string>& set_role, Outcome Attempt::*expected) {
  target_stream();
  for (const auto& a : attempts()) {
    const std::string context = std::string(role_name) + ": " + a.what;
    const auto got = outcome_of(attempt(url, set_role, a.sql), context);
    EXPECT_EQ(got, a.*expected) << context << ": got " << name_of(got) << ", expected "
                                << name_of(a.*expected);
  }
}

std::int64_t event_count() {
  pqxx::connection c(test_roles().admin_url);
  pqxx::read_transaction tx(c);
  return tx.exec1("SELECT count(*) FROM annals.events")[0].as<std::int64_t>();
}

TEST(RolePrivilegesTest, WriterGetsExactlyWhatTheApplicationNeeds) {
  check_matrix("writer", test_roles().writer_url, std::nullopt, &Attempt::writer);
}

TEST(RolePrivilegesTest, ReaderOnlyReadsEventsStreamsAndProjectionStatus) {
  check_matrix("reader", test_roles().reader_url, std::nullopt, &Attempt::reader);
}

TEST(RolePrivilegesTest, AuditorReadsEverythingAndChangesNothing) {
  check_matrix("auditor", test_roles().auditor_url, std::nullopt, &Attempt::auditor);
}

// The owner may alter the guards: that is why verify checks triggers and functions, and why
// anchors exist (docs/security.md, the threat model). The trigger still refuses its UPDATE,
// DELETE and TRUNCATE while the guards stand.
TEST(RolePrivilegesTest, OwnerOwnsTheStoreButTheTriggersStillRefuseChanges) {
  check_matrix("owner", test_roles().admin_url, test_roles().layout.owner, &Attempt::owner);
}

TEST(RolePrivilegesTest, ForgedInsertsAsTheWriterStoreNothing) {
  target_stream();
  const auto before = event_count();
  for (const char* sql :
       {kForgedBackdated, kForgedHugeTransactionId, kForgedTime, kForgedHash, kForgedPosition}) {
    pqxx::connection c(test_roles().writer_url);
    pqxx::work tx(c);
    try {
      tx.exec_params(sql, target_stream());
      tx.commit();
      ADD_FAILURE() << "the writer stored a forged row: " << sql;
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(state_of(e), "42501") << sql;
    }
  }
  EXPECT_EQ(event_count(), before);
  // The store still opens (a huge transaction id would have made it refuse).
  EXPECT_NO_THROW(
      annals::postgres::make_postgres_event_store({.connection_string = test_roles().writer_url}));
}

// The writer's own INSERT gets the database's transaction id, time and hash, whatever it names.
TEST(RolePrivilegesTest, PlainInsertByTheWriterGetsTheDatabasesValues) {
  const std::string stream = unique_stream("plain");
  pqxx::connection c(test_roles().writer_url);
  pqxx::work tx(c);
  const auto rows = tx.exec_params(
      "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
      " schema_version, data, metadata) VALUES ($1, 1, gen_random_uuid(), 'Opened', 1,"
      " '{\"owner\": \"Ada\"}', '{}'), ($1, 2, gen_random_uuid(), 'Deposited', 1,"
      " '{\"amount\": 5}', '{}')"
      " RETURNING transaction_id = pg_current_xact_id(), recorded_at = now()",
      stream);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    EXPECT_TRUE(row[0].as<bool>());
    EXPECT_TRUE(row[1].as<bool>());
  }
  tx.commit();
  const auto report = annals::postgres::verify(test_roles().admin_url, {.stream = stream});
  EXPECT_TRUE(report.ok()) << (report.findings.empty() ? "" : report.findings[0].message);
  EXPECT_EQ(report.events, 2);
}

// A version that leaves a gap, or one already taken, is refused for plain inserts too.
TEST(RolePrivilegesTest, PlainInsertMustContinueTheStream) {
  const std::string stream = unique_stream("gap");
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_roles().writer_url});
  store->append(StreamId(stream), ExpectedVersion::no_stream(), {NewEvent{.type = "Opened"}});
  for (const auto& [version, state] :
       std::vector<std::pair<int, std::string>>{{3, "AN011"}, {1, "23505"}}) {
    pqxx::connection c(test_roles().writer_url);
    pqxx::work tx(c);
    try {
      tx.exec_params(
          "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
          " schema_version, data, metadata) VALUES ($1, $2, gen_random_uuid(), 'X', 1, '{}',"
          " '{}')",
          stream, version);
      ADD_FAILURE() << "version " << version << " was stored";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(state_of(e), state) << "version " << version;
    }
  }
}

// A negative stream_version is an expectation the trigger resolves (sql/0010): the writer
// cannot use it to skip a version, overwrite one or break the chain. Each expectation that the
// stream does not meet stores nothing and raises nothing; each one it meets stores the next
// version, chained, and verify passes.
TEST(RolePrivilegesTest, NegativeVersionIsAnExpectationTheDatabaseResolves) {
  const std::string stream = unique_stream("expect");
  pqxx::connection c(test_roles().writer_url);
  const auto insert = [&](std::int64_t encoded) {
    pqxx::work tx(c);
    const auto rows = tx.exec_params(
        "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
        " schema_version, data, metadata) VALUES ($1, $2, gen_random_uuid(), 'X', 1, '{}',"
        " '{}') RETURNING stream_version",
        stream, encoded);
    tx.commit();
    return rows.empty() ? std::int64_t{0} : rows[0][0].as<std::int64_t>();
  };
  EXPECT_EQ(insert(-3), 0) << "stream exists, but it does not";
  EXPECT_EQ(insert(-5), 0) << "exactly 1, but it is empty";
  EXPECT_EQ(insert(-2), 1) << "no stream";
  EXPECT_EQ(insert(-2), 0) << "no stream, but it exists";
  EXPECT_EQ(insert(-4), 0) << "exactly 0, but it is at 1";
  EXPECT_EQ(insert(-6), 0) << "exactly 2, but it is at 1";
  EXPECT_EQ(insert(-5), 2) << "exactly 1";
  EXPECT_EQ(insert(-1), 3) << "any";
  EXPECT_EQ(insert(-3), 4) << "stream exists";
  pqxx::work tx(c);
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM annals.events WHERE stream_id = $1", stream)[0]
                .as<int>(),
            4);
  tx.commit();
  const auto report = annals::postgres::verify(test_roles().admin_url, {.stream = stream});
  EXPECT_TRUE(report.ok()) << (report.findings.empty() ? "" : report.findings[0].message);
}

// Objects the writer creates in a schema it may write cannot change what the trigger computes:
// the store's functions pin search_path (sql/0005).
TEST(RolePrivilegesTest, ShadowedFunctionsAndOperatorsDoNotChangeTheHash) {
  const std::string stream = unique_stream("shadow");
  {
    pqxx::connection c(test_roles().writer_url);
    pqxx::work tx(c);
    tx.exec(
        "CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE sql IMMUTABLE"
        " AS 'SELECT ''\\x00''::bytea'");
    tx.exec(
        "CREATE FUNCTION public.fake_concat(bytea, bytea) RETURNS bytea LANGUAGE sql"
        " IMMUTABLE AS 'SELECT ''\\x01''::bytea'");
    tx.exec(
        "CREATE OPERATOR public.|| (LEFTARG = bytea, RIGHTARG = bytea,"
        " FUNCTION = public.fake_concat)");
    tx.exec(
        "CREATE FUNCTION public.pg_current_xact_id() RETURNS xid8 LANGUAGE sql"
        " AS 'SELECT ''1''::xid8'");
    tx.exec("SET LOCAL search_path = public, pg_catalog");
    tx.exec_params(
        "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
        " schema_version, data, metadata) VALUES ($1, 1, gen_random_uuid(), 'Opened', 1,"
        " '{}', '{}')",
        stream);
    tx.commit();
  }
  const auto report = annals::postgres::verify(test_roles().admin_url, {.stream = stream});
  EXPECT_TRUE(report.ok()) << (report.findings.empty() ? "" : report.findings[0].message);
  pqxx::connection c(test_roles().admin_url);
  pqxx::work tx(c);
  EXPECT_FALSE(tx.exec_params1("SELECT transaction_id = '1'::xid8 FROM annals.events"
                               " WHERE stream_id = $1",
                               stream)[0]
                   .as<bool>());
  tx.exec("DROP OPERATOR public.|| (bytea, bytea)");
  tx.exec(
      "DROP FUNCTION public.fake_concat(bytea, bytea), public.sha256(bytea),"
      " public.pg_current_xact_id()");
  tx.commit();
}

// The application, run as the writer, uses every append path, reads and snapshots.
TEST(RolePrivilegesTest, TheStoreWorksThroughTheWriterRole) {
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_roles().writer_url});
  const StreamId a(unique_stream("writer"));
  const StreamId b(unique_stream("writer"));
  store->append(a, ExpectedVersion::no_stream(), {NewEvent{.type = "Opened"}});  // one event
  store->append(a, ExpectedVersion::exact(1),
                {NewEvent{.type = "Deposited"}, NewEvent{.type = "Deposited"}});  // a batch
  store->append_multi({{.stream_id = a,
                        .expected = ExpectedVersion::exact(3),
                        .events = {NewEvent{.type = "Sent"}}},
                       {.stream_id = b,
                        .expected = ExpectedVersion::no_stream(),
                        .events = {NewEvent{.type = "Received"}}}});
  // Concurrent single-event appends share group-commit transactions.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < 5; ++i) {
          store->append(StreamId(a.value() + "x" + std::to_string(t)), ExpectedVersion::any(),
                        {NewEvent{.type = "Tick"}});
        }
      } catch (const std::exception&) {
        failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->read_stream(a).size(), 4u);
  EXPECT_EQ(store->read_stream(b).size(), 1u);

  auto snapshots = annals::postgres::make_postgres_snapshot_store(
      {.connection_string = test_roles().writer_url});
  snapshots->save({.stream_id = a, .version = 4, .schema_version = 1, .state = {{"n", 4}}});
  ASSERT_TRUE(snapshots->load(a).has_value());
  EXPECT_EQ(snapshots->load(a)->version, 4);

  const auto report = annals::postgres::verify(test_roles().admin_url, {.stream = a.value()});
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.events, 4);
}

// Stream lifecycle through the writer role (sql/0014): it may delete a stream, reopen it and
// set its retention rules; verify still passes over the tombstone.
TEST(RolePrivilegesTest, TheWriterDeletesReopensAndSetsStreamMetadata) {
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_roles().writer_url});
  const StreamId stream(unique_stream("lifecycle"));
  store->append(stream, ExpectedVersion::no_stream(),
                {NewEvent{.type = "Opened"}, NewEvent{.type = "Closed"}});
  store->delete_stream(stream, ExpectedVersion::exact(2));
  EXPECT_TRUE(store->stream_state(stream).deleted);
  EXPECT_THROW(store->append(stream, ExpectedVersion::any(), {NewEvent{.type = "Deposited"}}),
               annals::StreamDeletedError);
  store->append_multi({{.stream_id = stream,
                        .expected = ExpectedVersion::exact(3),
                        .events = {NewEvent{.type = "Reopened"}},
                        .reopen = true}});
  EXPECT_FALSE(store->stream_state(stream).deleted);
  store->set_stream_metadata(stream, {.max_count = 1, .max_age = {}, .truncate_before = {}});
  EXPECT_EQ(store->stream_state(stream).metadata.max_count, 1);
  ASSERT_EQ(store->read_stream(stream).size(), 1u);
  store->set_stream_metadata(stream, {});
  EXPECT_EQ(store->read_stream(stream).size(), 4u);
  const auto report = annals::postgres::verify(test_roles().admin_url, {.stream = stream.value()});
  EXPECT_TRUE(report.ok()) << (report.findings.empty() ? "" : report.findings[0].message);
  EXPECT_EQ(report.events, 4);
}

// The refusal holds for every writer, not only this library's client: a plain INSERT as the
// writer role into a deleted stream is refused by the trigger (AN012) with an explicit version,
// and stores nothing with an expectation (a negative version, the client's single-event
// statement); append_events refuses it too (outcome 5) unless asked to reopen.
TEST(RolePrivilegesTest, RawInsertsAsTheWriterIntoADeletedStreamAreRefused) {
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_roles().writer_url});
  const StreamId stream(unique_stream("deleted"));
  store->append(stream, ExpectedVersion::no_stream(), {NewEvent{.type = "Opened"}});
  store->delete_stream(stream, ExpectedVersion::exact(1));
  pqxx::connection c(test_roles().writer_url);
  {
    pqxx::work tx(c);
    try {
      tx.exec_params(
          "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
          " schema_version, data, metadata) VALUES ($1, 3, gen_random_uuid(), 'X', 1, '{}',"
          " '{}')",
          stream.value());
      ADD_FAILURE() << "a plain INSERT into a deleted stream was stored";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(state_of(e), "AN012");
    }
  }
  for (const std::int64_t expectation : {-1, -3, -4 - 2}) {  // any, exists, exactly 2
    pqxx::work tx(c);
    const auto rows = tx.exec_params(
        "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type,"
        " schema_version, data, metadata) VALUES ($1, $2, gen_random_uuid(), 'X', 1, '{}',"
        " '{}') RETURNING stream_version",
        stream.value(), expectation);
    EXPECT_EQ(rows.size(), 0u) << "expectation " << expectation;
    tx.commit();
  }
  {
    pqxx::work tx(c);
    const auto row = tx.exec_params1(
        "SELECT outcome, actual_version FROM annals.append_events(ARRAY[$1], ARRAY[-1]::bigint[],"
        " ARRAY[1], ARRAY[gen_random_uuid()], ARRAY['X'], ARRAY[1], ARRAY['{}'::jsonb],"
        " ARRAY['{}'::jsonb])",
        stream.value());
    EXPECT_EQ(row[0].as<int>(), 5);
    EXPECT_EQ(row[1].as<std::int64_t>(), 2);
    tx.commit();
  }
  EXPECT_EQ(store->stream_version(stream), 2);
  EXPECT_TRUE(store->stream_state(stream).deleted);
}

TEST(RolePrivilegesTest, TheReaderCannotAppendThroughEitherPath) {
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_roles().reader_url});
  const StreamId stream(unique_stream("reader"));
  EXPECT_THROW(store->append(stream, ExpectedVersion::any(), {NewEvent{.type = "Opened"}}),
               annals::PermissionDeniedError);
  EXPECT_THROW(store->append(stream, ExpectedVersion::any(),
                             {NewEvent{.type = "Opened"}, NewEvent{.type = "Opened"}}),
               annals::PermissionDeniedError);
  EXPECT_TRUE(store->read_stream(stream).empty());
}

// The writer can run the up-to-date check of migrate (bank-service does at start) but cannot
// apply migrations or reconfigure roles.
TEST(RolePrivilegesTest, MigrateAsTheWriterChangesNothing) {
  EXPECT_TRUE(annals::postgres::migrate(test_roles().writer_url).empty());
  EXPECT_THROW(annals::postgres::migrate(test_roles().writer_url, {.roles = test_roles().layout}),
               annals::PermissionDeniedError);
}

TEST(RolePrivilegesTest, ConfiguringRolesAgainIsHarmless) {
  EXPECT_TRUE(
      annals::postgres::migrate(test_roles().admin_url, {.roles = test_roles().layout}).empty());
  check_matrix("writer after reconfiguring", test_roles().writer_url, std::nullopt,
               &Attempt::writer);
}

TEST(RolePrivilegesTest, LayoutsThatDefeatThemselvesAreRefused) {
  auto layout = test_roles().layout;
  layout.reader = layout.writer;
  EXPECT_THROW(annals::postgres::migrate(test_roles().admin_url, {.roles = layout}),
               annals::InvalidArgumentError);
  // A superuser as the writer could do anything: refused by the server-side check.
  pqxx::connection c(test_roles().admin_url);
  auto superuser = test_roles().layout;
  superuser.writer = c.username();
  EXPECT_THROW(annals::postgres::migrate(test_roles().admin_url, {.roles = superuser}),
               annals::InvalidArgumentError);
}

}  // namespace
