// Independent verification: verify recomputes every hash in the client, byte for
// byte what annals.event_hash computes; it reports triggers, functions and privileges that no
// longer guard the log; and its digest is the documented psql + sha256sum recipe's.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/postgres/verify.hpp"
#include "event_hasher.hpp"
#include "shipped_functions.hpp"
#include "test_database.hpp"

namespace {

using annals::postgres::FindingKind;
using annals::postgres::verify;
using annals::postgres::VerifyReport;
using annals::testing::test_database_url;
using annals::testing::unique_stream;

// Appends one event with raw JSON text (bypassing the client's JSON library, so numbers reach
// jsonb exactly as written) through the store's append function.
void append_raw(const std::string& stream, const std::string& type, const std::string& data,
                const std::string& metadata = "{}") {
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  tx.exec_params(
      "SELECT * FROM annals.append_events(ARRAY[$1::text], ARRAY[-1]::bigint[], ARRAY[1],"
      " ARRAY[gen_random_uuid()], ARRAY[$2::text], ARRAY[1], ARRAY[$3::jsonb],"
      " ARRAY[$4::jsonb])",
      stream, type, data, metadata);
  tx.commit();
}

void exec(const std::string& sql) {
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  tx.exec(sql);
  tx.commit();
}

std::vector<FindingKind> kinds(const VerifyReport& report) {
  std::vector<FindingKind> out;
  for (const auto& f : report.findings) out.push_back(f.kind);
  return out;
}

std::string unhex(std::string_view hex) {
  std::string bytes;
  EXPECT_TRUE(annals::postgres::detail::decode_bytea("\\x" + std::string(hex), bytes)) << hex;
  return bytes;
}

// The fixtures: multi-byte characters in stream ids, types and data; a payload over 1 MiB;
// numbers jsonb normalises; escapes and nesting; empty objects.
std::vector<std::string> append_fixtures() {
  const std::string unicode = unique_stream("könto-€😀");
  append_raw(unicode, "Überweisung✓", R"({"von": "Zoë", "an": "李小龍", "emoji": "😀"})",
             R"({"correlation": "ça-va"})");
  append_raw(unicode, "Ω", "{}", "{}");
  const std::string numbers = unique_stream("numbers");
  append_raw(numbers, "Numbers",
             R"({"a": 1.0, "b": 1e2, "c": -0, "d": 0.00010, "e": 123456789012345678901234567890,)"
             R"( "f": -1.5E-7, "g": 1e400, "h": [0, -0.0, 100, 1E+2]})");
  const std::string strings = unique_stream("strings");
  append_raw(strings, "Escaped",
             R"({"s": "line\nbreak \"quoted\" \\ back\tslash \u00e9 \ud83d\ude00 \u001f",)"
             R"( "nested": {"a": [{"b": {"c": []}}, {}, [[]]], "": ""}, "z": null, "y": true})",
             R"({"k": "\/"})");
  const std::string large = unique_stream("large");
  std::string blob;
  for (int i = 0; i < 300000; ++i) blob += "é\\\"x";  // 5 bytes stored, escaped in JSON text
  append_raw(large, "Large", R"({"blob": ")" + blob + R"("})");
  append_raw(large, "Large", R"({"after": "the large one"})");
  return {unicode, numbers, strings, large};
}

TEST(VerifyIndependenceTest, ClientAndServerHashesAgreeByteForByteOnFixtures) {
  const auto streams = append_fixtures();
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  tx.exec("SET client_encoding = 'UTF8'");
  const auto rows = tx.exec_params(
      "SELECT e.event_id, e.stream_id, e.stream_version, e.event_type, e.schema_version,"
      "       e.data, e.metadata, ((extract(epoch FROM e.recorded_at) * 1000000)::bigint),"
      "       encode(coalesce(lag(e.hash) OVER w, '\\x'::bytea), 'hex'),"
      "       encode(annals.event_hash(coalesce(lag(e.hash) OVER w, '\\x'::bytea), e.event_id,"
      "         e.stream_id, e.stream_version, e.event_type, e.schema_version, e.data,"
      "         e.metadata, e.recorded_at), 'hex'),"
      "       encode(e.hash, 'hex'), octet_length(e.data::text)"
      "  FROM annals.events e WHERE e.stream_id = ANY ($1::text[])"
      " WINDOW w AS (PARTITION BY e.stream_id ORDER BY e.stream_version)"
      " ORDER BY e.stream_id, e.stream_version",
      "{\"" + streams[0] + "\",\"" + streams[1] + "\",\"" + streams[2] + "\",\"" + streams[3] +
          "\"}");
  ASSERT_EQ(rows.size(), 6u);
  annals::postgres::detail::EventHasher hasher;
  bool saw_large = false;
  for (const auto& row : rows) {
    const annals::postgres::detail::StoredEventText event{
        .event_id = row[0].c_str(),
        .stream_id = row[1].c_str(),
        .stream_version = row[2].c_str(),
        .event_type = row[3].c_str(),
        .schema_version = row[4].c_str(),
        .data = std::string_view(row[5].c_str(), row[5].size()),
        .metadata = row[6].c_str(),
        .recorded_micros = row[7].c_str()};
    const auto client = annals::postgres::detail::to_hex(hasher.hash(unhex(row[8].c_str()), event));
    EXPECT_EQ(client, row[9].c_str()) << row[1].c_str() << " v" << row[2].c_str();
    EXPECT_EQ(client, row[10].c_str()) << row[1].c_str() << " v" << row[2].c_str();
    if (row[11].as<std::int64_t>() >= (1 << 20)) saw_large = true;
  }
  EXPECT_TRUE(saw_large) << "no fixture of at least 1 MiB";
  tx.commit();
  for (const auto& stream : streams) {
    const auto report = verify(test_database_url(), {.stream = stream});
    EXPECT_TRUE(report.ok()) << stream << ": " << report.findings.size();
    EXPECT_EQ(report.events_hashed, report.events);
  }
}

// verify no longer calls annals.event_hash: an owner who replaces it with a function that
// vouches for anything is reported, and the edited event is still found.
TEST(VerifyIndependenceTest, ReplacedHashFunctionDoesNotFoolVerify) {
  const std::string stream = unique_stream("trust");
  append_raw(stream, "Opened", R"({"owner": "Ada"})");
  pqxx::connection c(test_database_url());
  const std::string original =
      pqxx::work(c).exec1("SELECT pg_get_functiondef('annals.event_hash'::regproc)")[0].c_str();
  {
    pqxx::work tx(c);
    tx.exec("ALTER TABLE annals.events DISABLE TRIGGER events_refuse_update_delete");
    tx.exec_params("UPDATE annals.events SET data = '{\"owner\": \"Eve\"}' WHERE stream_id = $1",
                   stream);
    tx.exec("ALTER TABLE annals.events ENABLE TRIGGER events_refuse_update_delete");
    tx.exec(
        "CREATE OR REPLACE FUNCTION annals.event_hash(p_previous bytea, p_event_id uuid,"
        " p_stream_id text, p_stream_version bigint, p_event_type text,"
        " p_schema_version integer, p_data jsonb, p_metadata jsonb, p_recorded_at timestamptz)"
        " RETURNS bytea LANGUAGE sql STABLE AS $$ SELECT e.hash FROM annals.events e"
        " WHERE e.event_id = p_event_id $$");
    tx.commit();
  }
  const auto report = verify(test_database_url());
  {
    pqxx::work tx(c);
    tx.exec(original);
    tx.commit();
  }
  EXPECT_NE(std::find(kinds(report).begin(), kinds(report).end(), FindingKind::kFunctionChanged),
            kinds(report).end());
  const auto at_stream = std::find_if(report.findings.begin(), report.findings.end(),
                                      [&](const auto& f) { return f.stream_id == stream; });
  ASSERT_NE(at_stream, report.findings.end());
  EXPECT_EQ(at_stream->kind, FindingKind::kHashMismatch);
}

// ENABLE REPLICA TRIGGER leaves tgenabled 'R': ordinary sessions bypass the guard.
TEST(VerifyIndependenceTest, ReplicaOnlyTriggerIsReported) {
  exec("ALTER TABLE annals.events ENABLE REPLICA TRIGGER events_refuse_update_delete");
  const auto report = verify(test_database_url(), {.stream = "none-such"});
  exec("ALTER TABLE annals.events ENABLE TRIGGER events_refuse_update_delete");
  EXPECT_EQ(kinds(report), std::vector<FindingKind>{FindingKind::kGuardDisabled});
  EXPECT_NE(report.findings.at(0).message.find("events_refuse_update_delete"), std::string::npos);
  exec("ALTER TABLE annals.events ENABLE ALWAYS TRIGGER events_refuse_update_delete");
  EXPECT_TRUE(verify(test_database_url(), {.stream = "none-such"}).ok());
  exec("ALTER TABLE annals.events ENABLE TRIGGER events_refuse_update_delete");
}

TEST(VerifyIndependenceTest, MissingAndUnexpectedTriggersAreReported) {
  exec("DROP TRIGGER events_refuse_truncate ON annals.events");
  exec(
      "CREATE TRIGGER zz_extra BEFORE INSERT ON annals.events"
      " FOR EACH ROW EXECUTE FUNCTION annals.refuse_event_change()");
  const auto report = verify(test_database_url(), {.stream = "none-such"});
  exec("DROP TRIGGER zz_extra ON annals.events");
  exec(
      "CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON annals.events"
      " FOR EACH STATEMENT EXECUTE FUNCTION annals.refuse_event_change()");
  EXPECT_EQ(kinds(report), (std::vector<FindingKind>{FindingKind::kTriggerMissing,
                                                     FindingKind::kTriggerUnexpected}));
  EXPECT_TRUE(verify(test_database_url(), {.stream = "none-such"}).ok());
}

TEST(VerifyIndependenceTest, ReplacedTriggerFunctionIsReported) {
  pqxx::connection c(test_database_url());
  const std::string original =
      pqxx::work(c)
          .exec1("SELECT pg_get_functiondef('annals.refuse_event_change'::regproc)")[0]
          .c_str();
  // Only the body changes: the shipped SET clause (sql/0005) is kept.
  exec(
      "CREATE OR REPLACE FUNCTION annals.refuse_event_change() RETURNS trigger"
      " LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN NEW; END $$");
  const auto report = verify(test_database_url(), {.stream = "none-such"});
  exec(original);
  EXPECT_EQ(kinds(report), std::vector<FindingKind>{FindingKind::kFunctionChanged});
  EXPECT_NE(report.findings.at(0).message.find("annals.refuse_event_change()"), std::string::npos);
  EXPECT_TRUE(verify(test_database_url(), {.stream = "none-such"}).ok());
}

TEST(VerifyIndependenceTest, ChangedSecurityOrSettingsOfAFunctionAreReported) {
  exec("ALTER FUNCTION annals.refuse_event_change() SECURITY DEFINER");
  const auto definer = verify(test_database_url(), {.stream = "none-such"});
  exec("ALTER FUNCTION annals.refuse_event_change() SECURITY INVOKER");
  exec("ALTER FUNCTION annals.event_hash SET search_path = public");
  const auto config = verify(test_database_url(), {.stream = "none-such"});
  exec("ALTER FUNCTION annals.event_hash RESET ALL");
  EXPECT_EQ(kinds(definer), std::vector<FindingKind>{FindingKind::kFunctionSecurityChanged});
  EXPECT_EQ(kinds(config), std::vector<FindingKind>{FindingKind::kFunctionSecurityChanged});
  EXPECT_TRUE(verify(test_database_url(), {.stream = "none-such"}).ok());
}

TEST(VerifyIndependenceTest, ExtraAndMissingFunctionsAreReported) {
  exec("CREATE FUNCTION annals.helper() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$");
  const auto extra = verify(test_database_url(), {.stream = "none-such"});
  exec("DROP FUNCTION annals.helper()");
  exec("ALTER FUNCTION annals.event_hash RENAME TO event_hash_old");
  const auto missing = verify(test_database_url(), {.stream = "none-such"});
  exec("ALTER FUNCTION annals.event_hash_old RENAME TO event_hash");
  EXPECT_EQ(kinds(extra), std::vector<FindingKind>{FindingKind::kFunctionUnexpected});
  EXPECT_EQ(kinds(missing), (std::vector<FindingKind>{FindingKind::kFunctionUnexpected,
                                                      FindingKind::kFunctionMissing}));
  EXPECT_TRUE(verify(test_database_url(), {.stream = "none-such"}).ok());
}

// Table-level writes, and column-level INSERT on a column the database must set, held by a
// role that does not own the table.
TEST(VerifyIndependenceTest, ExcessPrivilegesAreReported) {
  const std::string role = "annals_test_" + unique_stream("r").substr(2);
  exec("CREATE ROLE " + role + " NOLOGIN");
  exec("GRANT SELECT, UPDATE, TRUNCATE ON annals.events TO " + role);
  exec("GRANT INSERT (hash, stream_id) ON annals.events TO " + role);
  exec("GRANT DELETE ON annals.events TO PUBLIC");
  const auto report = verify(test_database_url(), {.stream = "none-such"});
  exec("REVOKE ALL ON annals.events FROM " + role);
  exec("REVOKE DELETE ON annals.events FROM PUBLIC");
  exec("DROP ROLE " + role);
  std::vector<std::string> messages;
  for (const auto& f : report.findings) {
    EXPECT_EQ(f.kind, FindingKind::kExcessPrivilege) << f.message;
    messages.push_back(f.message);
  }
  ASSERT_EQ(messages.size(), 4u) << ::testing::PrintToString(messages);
  for (const std::string& expected :
       {"role " + role + " holds TRUNCATE on annals.events",
        "role " + role + " holds UPDATE on annals.events", std::string("role PUBLIC holds DELETE"),
        "role " + role + " holds INSERT on annals.events column hash"}) {
    EXPECT_TRUE(std::any_of(messages.begin(), messages.end(),
                            [&](const std::string& m) { return m.find(expected) == 0; }))
        << expected << " not in " << ::testing::PrintToString(messages);
  }
  EXPECT_TRUE(verify(test_database_url(), {.stream = "none-such"}).ok());
}

TEST(VerifyIndependenceTest, RecordedTimeGoingBackwardsIsReported) {
  const std::string stream = unique_stream("clock");
  append_raw(stream, "A", "{}");
  append_raw(stream, "B", "{}");
  append_raw(stream, "C", "{}");
  // As if the server's clock was set back before the third append: its hash is consistent.
  exec("ALTER TABLE annals.events DISABLE TRIGGER events_refuse_update_delete");
  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE annals.events e SET recorded_at = e.recorded_at - interval '1 hour',"
        " hash = annals.event_hash(p.hash, e.event_id, e.stream_id, e.stream_version,"
        "   e.event_type, e.schema_version, e.data, e.metadata,"
        "   e.recorded_at - interval '1 hour')"
        " FROM annals.events p WHERE e.stream_id = $1 AND e.stream_version = 3"
        "  AND p.stream_id = $1 AND p.stream_version = 2",
        stream);
    tx.commit();
  }
  exec("ALTER TABLE annals.events ENABLE TRIGGER events_refuse_update_delete");
  const auto report = verify(test_database_url(), {.stream = stream});
  ASSERT_EQ(kinds(report), std::vector<FindingKind>{FindingKind::kRecordedTimeBackwards});
  EXPECT_EQ(report.findings[0].version, 3);
}

// The shipped definitions come from the migrations' text: the last definition of a name
// wins, with its SECURITY and SET clauses wherever they stand.
TEST(VerifyIndependenceTest, ShippedFunctionsAreParsedFromMigrations) {
  const auto functions = annals::postgres::detail::parse_shipped_functions(
      {"CREATE FUNCTION annals.f(a int DEFAULT (1)) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
       "CREATE FUNCTION other.g() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;",
       "create or replace function annals.f(a int) returns table (x int)\n"
       "  language plpgsql security definer set search_path = pg_catalog, pg_temp\n"
       "  as $body$\nBEGIN RETURN; END\n$body$;\n"
       "CREATE FUNCTION annals.h() RETURNS trigger AS $f$ BEGIN END $f$ LANGUAGE plpgsql"
       " SET work_mem TO '64MB';"});
  ASSERT_EQ(functions.size(), 2u);
  EXPECT_EQ(functions.at("f").body, "\nBEGIN RETURN; END\n");
  EXPECT_TRUE(functions.at("f").security_definer);
  EXPECT_EQ(functions.at("f").settings, std::vector<std::string>{"search_path=pg_catalog,pg_temp"});
  EXPECT_EQ(functions.at("h").body, " BEGIN END ");
  EXPECT_FALSE(functions.at("h").security_definer);
  EXPECT_EQ(functions.at("h").settings, std::vector<std::string>{"work_mem=64MB"});
  EXPECT_TRUE(annals::postgres::detail::shipped_functions().contains("append_events"));
  EXPECT_TRUE(annals::postgres::detail::shipped_functions().contains("refuse_event_change"));
}

// ALTER FUNCTION changes the attributes a later migration gives a function (sql/0005 makes
// append_events SECURITY DEFINER with a pinned search_path this way).
TEST(VerifyIndependenceTest, AlterFunctionInALaterMigrationChangesTheShippedAttributes) {
  const auto functions = annals::postgres::detail::parse_shipped_functions(
      {"CREATE FUNCTION annals.f(a int[]) RETURNS int LANGUAGE sql SET work_mem = '1MB'"
       " AS $$ SELECT 1 $$;",
       "ALTER FUNCTION annals.f(int[]) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;\n"
       "ALTER FUNCTION annals.f(int[]) SET work_mem = '2MB';\n"
       "ALTER FUNCTION annals.unknown() SECURITY DEFINER;"});
  ASSERT_EQ(functions.size(), 1u);
  EXPECT_TRUE(functions.at("f").security_definer);
  EXPECT_EQ(functions.at("f").settings,
            (std::vector<std::string>{"search_path=pg_catalog,pg_temp", "work_mem=2MB"}));
  const auto& shipped = annals::postgres::detail::shipped_functions();
  EXPECT_TRUE(shipped.at("append_events").security_definer);
  EXPECT_EQ(shipped.at("append_events").settings,
            std::vector<std::string>{"search_path=pg_catalog,pg_temp"});
  EXPECT_FALSE(shipped.at("set_event_chain").security_definer);
  EXPECT_EQ(shipped.at("refuse_event_change").settings,
            std::vector<std::string>{"search_path=pg_catalog,pg_temp"});
}

// The digest recipe of docs/auditing.md, run as written: its SQL from the document, the
// hex-to-bytes and sha256sum steps done here; it gives verify's digest, also for stream ids
// that sort differently in byte order than in a linguistic collation.
TEST(VerifyIndependenceTest, DocumentedDigestRecipeGivesVerifysDigest) {
  append_raw(unique_stream("a"), "A", "{}");
  append_raw(unique_stream("B"), "A", "{}");
  append_raw(unique_stream("_b"), "A", "{}");
  append_raw(unique_stream("ä"), "A", "{}");
  std::ifstream doc(std::filesystem::path(ANNALS_SOURCE_DIR) / "docs" / "auditing.md");
  std::string sql;
  bool inside = false;
  for (std::string line; std::getline(doc, line);) {
    if (inside && line == "SQL") break;
    if (inside) sql += line + "\n";
    if (line.find("<<'SQL' | xxd -r -p | sha256sum") != std::string::npos) inside = true;
  }
  ASSERT_FALSE(sql.empty()) << "no digest recipe in docs/auditing.md";
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  const std::string hex = tx.exec1(sql)[0].c_str();
  tx.commit();
  const std::string bytes = unhex(hex);
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  ASSERT_EQ(EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr), 1);
  const auto report = verify(test_database_url());
  EXPECT_EQ(annals::postgres::detail::to_hex(
                std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())),
            report.digest);
}

}  // namespace
