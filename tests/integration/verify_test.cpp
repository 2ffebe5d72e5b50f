// annals::postgres::verify (ARCHITECTURE decision 8): a clean history verifies; each kind of
// tampering that bypasses the append-only guards is found and located exactly.
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/verify.hpp"
#include "test_database.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::postgres::FindingKind;
using annals::postgres::verify;
using annals::postgres::VerifyOptions;
using annals::testing::test_database_url;
using annals::testing::unique_stream;

// A stream with `count` events, appended one by one (the single-event fast path) and then in
// one batch (the PL/pgSQL path), so both append paths' hashes are verified.
std::string make_stream(int count) {
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
  const std::string id = unique_stream("audit");
  const StreamId stream(id);
  store->append(stream, ExpectedVersion::no_stream(),
                {NewEvent{.type = "Opened", .data = {{"owner", "Ada \"Lovelace\"; ü"}}}});
  std::vector<NewEvent> rest;
  for (int i = 1; i < count; ++i) {
    rest.push_back(NewEvent{.type = "Deposited",
                            .data = {{"amount", i * 100}},
                            .metadata = {{"traceparent", "00-abc-def-01"}}});
  }
  if (!rest.empty()) store->append(stream, ExpectedVersion::exact(1), std::move(rest));
  return id;
}

// Runs `sql` ($1 = stream id) with the append-only triggers disabled: what an administrator
// with table ownership could do behind the application's back.
void tamper(const std::string& stream, const std::string& sql) {
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  tx.exec("ALTER TABLE annals.events DISABLE TRIGGER events_refuse_update_delete");
  tx.exec_params(sql, stream);
  tx.exec("ALTER TABLE annals.events ENABLE TRIGGER events_refuse_update_delete");
  tx.commit();
}

TEST(VerifyTest, CleanStreamVerifies) {
  const auto stream = make_stream(5);
  const auto report = verify(test_database_url(), {.stream = stream});
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.streams, 1);
  EXPECT_EQ(report.events, 5);
  EXPECT_EQ(report.digest.size(), 64u);
  EXPECT_FALSE(report.truncated);
}

TEST(VerifyTest, WholeStoreVerifiesAndCountsEveryStream) {
  const auto before = verify(test_database_url());
  make_stream(3);
  make_stream(2);
  const auto after = verify(test_database_url());
  EXPECT_TRUE(after.ok());
  EXPECT_EQ(after.streams, before.streams + 2);
  EXPECT_EQ(after.events, before.events + 5);
  EXPECT_NE(after.digest, before.digest);
}

TEST(VerifyTest, EditedEventIsReportedAsHashMismatchAtItsVersion) {
  const auto stream = make_stream(4);
  tamper(stream,
         "UPDATE annals.events SET data = '{\"amount\": 1000000}' "
         "WHERE stream_id = $1 AND stream_version = 2");
  const auto report = verify(test_database_url(), {.stream = stream});
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kHashMismatch);
  EXPECT_EQ(report.findings[0].stream_id, stream);
  EXPECT_EQ(report.findings[0].version, 2);
  EXPECT_NE(report.findings[0].message.find("version 2"), std::string::npos);
}

TEST(VerifyTest, EditedMetadataOrTimeIsFound) {
  const auto stream = make_stream(3);
  tamper(stream,
         "UPDATE annals.events SET recorded_at = recorded_at - interval '1 day' "
         "WHERE stream_id = $1 AND stream_version = 3");
  const auto report = verify(test_database_url(), {.stream = stream});
  // The edited time breaks the hash and also puts version 3 before version 2.
  ASSERT_EQ(report.findings.size(), 2u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kHashMismatch);
  EXPECT_EQ(report.findings[0].version, 3);
  EXPECT_EQ(report.findings[1].kind, FindingKind::kRecordedTimeBackwards);
  EXPECT_EQ(report.findings[1].version, 3);
}

TEST(VerifyTest, RewrittenHashBreaksItsOwnAndTheNextLink) {
  const auto stream = make_stream(3);
  tamper(stream,
         "UPDATE annals.events SET hash = sha256('forged'::bytea) "
         "WHERE stream_id = $1 AND stream_version = 1");
  const auto report = verify(test_database_url(), {.stream = stream});
  ASSERT_EQ(report.findings.size(), 2u);
  EXPECT_EQ(report.findings[0].version, 1);
  EXPECT_EQ(report.findings[1].version, 2);
  EXPECT_EQ(report.findings[1].kind, FindingKind::kHashMismatch);
}

TEST(VerifyTest, RemovedEventIsReportedAsVersionGap) {
  const auto stream = make_stream(4);
  tamper(stream, "DELETE FROM annals.events WHERE stream_id = $1 AND stream_version = 2");
  const auto report = verify(test_database_url(), {.stream = stream});
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kVersionGap);
  EXPECT_EQ(report.findings[0].version, 3);
  EXPECT_NE(report.findings[0].message.find("from version 1 to 3"), std::string::npos);
  EXPECT_EQ(report.events, 3);
}

TEST(VerifyTest, RemovedFirstEventIsReportedAsVersionGap) {
  const auto stream = make_stream(2);
  tamper(stream, "DELETE FROM annals.events WHERE stream_id = $1 AND stream_version = 1");
  const auto report = verify(test_database_url(), {.stream = stream});
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kVersionGap);
  EXPECT_NE(report.findings[0].message.find("starts at version 2"), std::string::npos);
}

// A removed tail leaves a valid chain; the digest recorded earlier is what catches it.
TEST(VerifyTest, RemovedNewestEventChangesTheDigest) {
  const auto stream = make_stream(3);
  const auto before = verify(test_database_url(), {.stream = stream});
  tamper(stream, "DELETE FROM annals.events WHERE stream_id = $1 AND stream_version = 3");
  const auto after = verify(test_database_url(), {.stream = stream});
  EXPECT_TRUE(after.ok());
  EXPECT_NE(after.digest, before.digest);
  EXPECT_EQ(verify(test_database_url(), {.stream = stream}).digest, after.digest);
}

TEST(VerifyTest, DisabledGuardIsReported) {
  const auto stream = make_stream(1);
  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    tx.exec("ALTER TABLE annals.events DISABLE TRIGGER events_refuse_truncate");
    tx.commit();
  }
  const auto report = verify(test_database_url(), {.stream = stream});
  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    tx.exec("ALTER TABLE annals.events ENABLE TRIGGER events_refuse_truncate");
    tx.commit();
  }
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kGuardDisabled);
  EXPECT_FALSE(report.findings[0].stream_id.has_value());
  EXPECT_TRUE(verify(test_database_url(), {.stream = stream}).ok());
}

TEST(VerifyTest, FindingsAreCutAtMaxFindings) {
  const auto stream = make_stream(5);
  tamper(stream, "UPDATE annals.events SET data = '{}' WHERE stream_id = $1");
  const auto report = verify(test_database_url(), {.stream = stream, .max_findings = 2});
  EXPECT_EQ(report.findings.size(), 2u);
  EXPECT_TRUE(report.truncated);
}

TEST(VerifyTest, UnknownStreamVerifiesEmpty) {
  const auto report = verify(test_database_url(), {.stream = unique_stream("missing")});
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.streams, 0);
  EXPECT_EQ(report.events, 0);
}

// The example of docs/auditing.md.
void print_verification(const std::string& url, std::ostream& out) {
  // docs:begin verify-store
  const annals::postgres::VerifyReport report = annals::postgres::verify(url);
  for (const annals::postgres::VerifyFinding& finding : report.findings) {
    out << annals::postgres::to_string(finding.kind) << ": " << finding.message << '\n';
  }
  out << report.events << " events in " << report.streams << " streams, digest " << report.digest
      << (report.ok() ? ": ok" : ": PROBLEMS FOUND") << '\n';
  // docs:end
}

TEST(VerifyTest, DocsExamplePrintsFindingsAndDigest) {
  const auto stream = make_stream(2);
  tamper(stream,
         "UPDATE annals.events SET data = '{}' WHERE stream_id = $1 AND stream_version = 2");
  std::ostringstream out;
  print_verification(test_database_url(), out);
  EXPECT_NE(out.str().find("hash-mismatch: stream \"" + stream + "\" version 2"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("PROBLEMS FOUND"), std::string::npos);
}

TEST(VerifyTest, ZeroMaxFindingsIsInvalid) {
  EXPECT_THROW(static_cast<void>(verify(test_database_url(), {.max_findings = 0})),
               annals::InvalidArgumentError);
}

}  // namespace
