// Anchors (ARCHITECTURE decision 8): an anchor taken earlier proves that nothing at
// or before its position was changed, removed, inserted (also with a backdated transaction id)
// or reordered since; verifying a newer anchor resumes from a recorded older one.
//
// Each attack runs as the database superuser with the guards out of the way, is detected, and
// is then undone, so the tests of this binary (which share one database) stay independent.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/anchor.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/verify.hpp"
#include "test_database.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::postgres::Anchor;
using annals::postgres::AnchorOutcome;
using annals::postgres::FindingKind;
using annals::postgres::parse_anchor;
using annals::postgres::take_anchor;
using annals::postgres::to_json;
using annals::postgres::verify;
using annals::postgres::VerifyReport;
using annals::testing::test_database_url;
using annals::testing::unique_stream;

// A stream of `count` events: the first appended alone, the rest in one transaction.
std::string make_stream(int count) {
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
  const std::string id = unique_stream("anchored");
  store->append(StreamId(id), ExpectedVersion::no_stream(),
                {NewEvent{.type = "Opened", .data = {{"owner", "Ada"}}}});
  std::vector<NewEvent> rest;
  for (int i = 1; i < count; ++i) {
    rest.push_back(NewEvent{.type = "Deposited", .data = {{"amount", i}}});
  }
  if (!rest.empty()) store->append(StreamId(id), ExpectedVersion::exact(1), std::move(rest));
  return id;
}

// Runs `statements` ($1 = the stream id) in one transaction with every trigger of
// annals.events disabled (what a superuser or the table's owner can do).
void as_superuser(const std::string& stream, const std::vector<std::string>& statements) {
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  tx.exec("ALTER TABLE annals.events DISABLE TRIGGER USER");
  for (const auto& sql : statements) {
    if (sql.find("$1") == std::string::npos) {
      tx.exec(sql);
    } else {
      tx.exec_params(sql, stream);
    }
  }
  tx.exec("ALTER TABLE annals.events ENABLE TRIGGER USER");
  tx.commit();
}

// Sets an event's data and rewrites its hash to match (from its predecessor's stored hash),
// as someone covering their tracks would: the stream's chain still verifies when the event is
// the stream's newest.
void rewrite(const std::string& stream, int version, const std::string& data) {
  const std::string v = std::to_string(version);
  as_superuser(stream,
               {"UPDATE annals.events SET data = '" + data +
                    "' WHERE stream_id = $1"
                    " AND stream_version = " +
                    v,
                "UPDATE annals.events e SET hash = annals.event_hash(coalesce((SELECT p.hash"
                " FROM annals.events p WHERE p.stream_id = e.stream_id"
                " AND p.stream_version = e.stream_version - 1), '\\x'::bytea), e.event_id,"
                " e.stream_id, e.stream_version, e.event_type, e.schema_version, e.data,"
                " e.metadata, e.recorded_at) WHERE e.stream_id = $1 AND e.stream_version = " +
                    v});
}

bool has(const VerifyReport& report, FindingKind kind) {
  for (const auto& f : report.findings) {
    if (f.kind == kind) return true;
  }
  return false;
}

// Waits until the stream's events are settled: their transactions ended and no older one runs
// anywhere on the server (another test process may hold one open for a while), as
// PostgresStoreTest does for read_all.
void wait_until_settled(const std::string& stream) {
  pqxx::connection c(test_database_url());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    pqxx::nontransaction tx(c);
    const bool settled =
        tx.exec_params1(
              "SELECT max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot())"
              "  FROM annals.events WHERE stream_id = $1",
              stream)[0]
            .as<bool>();
    if (settled || std::chrono::steady_clock::now() > deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The anchor covers the stream's events.
Anchor anchor_covering(const std::string& stream, bool record = false) {
  wait_until_settled(stream);
  const auto anchor = take_anchor(test_database_url(), {.record = record});
  pqxx::connection c(test_database_url());
  pqxx::work tx(c);
  const auto last = tx.exec_params1(
      "SELECT max(transaction_id)::text FROM annals.events WHERE stream_id = $1", stream);
  EXPECT_LE(std::stoull(last[0].c_str()), anchor.position.commit())
      << "the stream's events are not settled yet (an older transaction is still running)";
  return anchor;
}

VerifyReport verify_anchors(std::vector<Anchor> anchors, bool full = false) {
  return verify(test_database_url(), {.anchors = std::move(anchors), .full = full});
}

TEST(AnchorTest, FreshAnchorVerifiesAndRoundTripsThroughJson) {
  const auto stream = make_stream(3);
  const auto anchor = anchor_covering(stream);
  EXPECT_GE(anchor.events, 3);
  EXPECT_EQ(anchor.digest.size(), 64u);
  EXPECT_EQ(anchor.time.back(), 'Z');
  EXPECT_EQ(parse_anchor(to_json(anchor)), anchor);

  const auto report = verify_anchors({anchor});
  EXPECT_TRUE(report.ok()) << report.findings.at(0).message;
  ASSERT_EQ(report.anchors.size(), 1u);
  EXPECT_EQ(report.anchors[0].outcome, AnchorOutcome::kVerified);
  EXPECT_EQ(report.events, anchor.events);
  EXPECT_EQ(report.events_hashed, anchor.events);
  EXPECT_EQ(report.digest, anchor.digest);
}

// The hole a chain cannot see: a forged stream whose hashes are correct (computed with
// annals.event_hash) inserted with a backdated transaction id, so it sorts inside the settled
// prefix (below every reader's checkpoint).
TEST(AnchorTest, AnAnchorNested100000DeepIsRefusedNamingTheLimit) {
  const std::string deep =
      "{\"position\": " + std::string(100'000, '[') + std::string(100'000, ']') + "}";
  try {
    static_cast<void>(parse_anchor(deep));
    ADD_FAILURE() << "parsed";
  } catch (const annals::InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("anchor is JSON nested 100001 levels deep, over the "
                                         "limit of 512 levels"),
              std::string::npos)
        << e.what();
  }
}

TEST(AnchorTest, BackdatedForgedRowIsDetectedWhereChainOnlyVerifyMissesIt) {
  const auto stream = make_stream(2);
  const auto anchor = anchor_covering(stream);
  const std::string forged = unique_stream("forged");
  as_superuser(forged,
               {"WITH v AS (SELECT gen_random_uuid() AS id, e.transaction_id, e.recorded_at"
                "   FROM annals.events e WHERE e.stream_id = '" +
                stream +
                "'"
                "    AND e.stream_version = 1)"
                " INSERT INTO annals.events (transaction_id, stream_id, stream_version,"
                "   event_id, event_type, schema_version, data, metadata, recorded_at, hash)"
                " SELECT v.transaction_id, $1::text, 1, v.id, 'Deposited', 1,"
                "        '{\"amount\": 1000000}', '{}', v.recorded_at,"
                "        annals.event_hash('\\x'::bytea, v.id, $1::text, 1, 'Deposited', 1,"
                "                          '{\"amount\": 1000000}', '{}', v.recorded_at)"
                "   FROM v"});
  const auto chain_only = verify(test_database_url());
  const auto anchored = verify_anchors({anchor});
  as_superuser(forged, {"DELETE FROM annals.events WHERE stream_id = $1"});

  EXPECT_TRUE(chain_only.ok()) << chain_only.findings.at(0).message;
  ASSERT_EQ(anchored.findings.size(), 1u);
  EXPECT_EQ(anchored.findings[0].kind, FindingKind::kAnchorMismatch);
  EXPECT_NE(anchored.findings[0].message.find(anchor.position.to_string()), std::string::npos);
  EXPECT_EQ(anchored.anchors.at(0).outcome, AnchorOutcome::kMismatch);
  EXPECT_EQ(anchored.events, anchor.events + 1);
  EXPECT_TRUE(verify_anchors({anchor}).ok());
}

// Removing a stream's newest event leaves a valid chain; the anchor catches it.
TEST(AnchorTest, RemovedRowIsDetected) {
  const auto stream = make_stream(3);
  const auto anchor = anchor_covering(stream);
  as_superuser(stream, {"DELETE FROM annals.events WHERE stream_id = $1 AND stream_version = 3"});
  const auto report = verify_anchors({anchor});
  EXPECT_TRUE(verify(test_database_url(), {.stream = stream}).ok());
  ASSERT_TRUE(has(report, FindingKind::kAnchorMismatch));
  EXPECT_EQ(report.events, anchor.events - 1);
}

// An edit with the triggers disabled breaks the event's own link; an edit that also rewrites
// the hash (of a stream's newest event) leaves a valid chain, and the anchor catches it.
TEST(AnchorTest, UpdatedRowIsDetected) {
  const auto stream = make_stream(2);
  const auto anchor = anchor_covering(stream);
  as_superuser(stream, {"UPDATE annals.events SET data = '{\"amount\": 999}'"
                        " WHERE stream_id = $1 AND stream_version = 2"});
  const auto edited = verify_anchors({anchor});
  rewrite(stream, 2, R"({"amount": 999})");
  const auto chain_only = verify(test_database_url(), {.stream = stream});
  const auto rehashed = verify_anchors({anchor});
  rewrite(stream, 2, R"({"amount": 1})");

  EXPECT_TRUE(has(edited, FindingKind::kHashMismatch));
  EXPECT_TRUE(chain_only.ok());
  ASSERT_EQ(rehashed.findings.size(), 1u);
  EXPECT_EQ(rehashed.findings[0].kind, FindingKind::kAnchorMismatch);
  EXPECT_TRUE(verify_anchors({anchor}).ok());
}

// Swapping two events' global positions reorders the log without touching any chain.
TEST(AnchorTest, SwappedGlobalPositionsAreDetected) {
  const auto stream = make_stream(3);
  const auto anchor = anchor_covering(stream);
  const std::vector<std::string> swap = {
      "ALTER TABLE annals.events ALTER COLUMN global_position SET GENERATED BY DEFAULT",
      "UPDATE annals.events e SET global_position = -e.global_position"
      " WHERE e.stream_id = $1 AND e.stream_version IN (2, 3)",
      "UPDATE annals.events e SET global_position = (SELECT -o.global_position"
      "   FROM annals.events o WHERE o.stream_id = e.stream_id"
      "    AND o.stream_version = 5 - e.stream_version)"
      " WHERE e.stream_id = $1 AND e.stream_version IN (2, 3)",
      "ALTER TABLE annals.events ALTER COLUMN global_position SET GENERATED ALWAYS"};
  as_superuser(stream, swap);
  const auto chain_only = verify(test_database_url(), {.stream = stream});
  const auto report = verify_anchors({anchor});
  as_superuser(stream, swap);
  EXPECT_TRUE(chain_only.ok());
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kAnchorMismatch);
  EXPECT_TRUE(verify_anchors({anchor}).ok());
}

// With recorded anchors, verifying a newer one re-hashes only the events since the older one;
// --full (full = true) re-hashes from the start. An anchor the database did not record is not
// resumed from.
TEST(AnchorTest, VerifyingANewerAnchorResumesFromARecordedOlderOne) {
  const auto first = make_stream(2);
  const auto older = anchor_covering(first, /*record=*/true);
  const auto second = make_stream(5);
  const auto newer = anchor_covering(second, /*record=*/true);
  ASSERT_EQ(newer.events - older.events, 5);

  const auto incremental = verify_anchors({newer, older});
  EXPECT_TRUE(incremental.ok()) << incremental.findings.at(0).message;
  ASSERT_EQ(incremental.anchors.size(), 2u);
  EXPECT_EQ(incremental.anchors[0].anchor, older);
  EXPECT_EQ(incremental.anchors[0].outcome, AnchorOutcome::kResumed);
  EXPECT_EQ(incremental.anchors[1].outcome, AnchorOutcome::kVerified);
  EXPECT_EQ(incremental.events_hashed, 5);

  const auto full = verify_anchors({older, newer}, /*full=*/true);
  EXPECT_TRUE(full.ok());
  EXPECT_EQ(full.anchors[0].outcome, AnchorOutcome::kVerified);
  EXPECT_EQ(full.events_hashed, newer.events);

  const auto unrecorded = anchor_covering(second, /*record=*/false);
  auto unknown = unrecorded;
  unknown.digest = std::string(64, 'a');  // not what the database recorded at that position
  const auto not_resumed = verify_anchors({unknown, newer});
  EXPECT_EQ(not_resumed.events_hashed, newer.events);
  EXPECT_EQ(not_resumed.anchors[0].outcome, AnchorOutcome::kMismatch);
}

// The trust limit of incremental verification: a change before the resumed anchor is only
// found by a full run.
TEST(AnchorTest, IncrementalRunTrustsTheResumedPrefixAndFullRunDoesNot) {
  const auto stream = make_stream(2);
  const auto older = anchor_covering(stream, true);
  const auto later = make_stream(1);
  const auto newer = anchor_covering(later, true);
  rewrite(stream, 2, R"({"amount": 2})");
  const auto incremental = verify_anchors({older, newer});
  const auto full = verify_anchors({older, newer}, true);
  rewrite(stream, 2, R"({"amount": 1})");
  EXPECT_TRUE(incremental.ok());
  EXPECT_EQ(incremental.events_hashed, 1);
  ASSERT_EQ(full.findings.size(), 2u);
  EXPECT_EQ(full.anchors[0].outcome, AnchorOutcome::kMismatch);
  EXPECT_EQ(full.anchors[1].outcome, AnchorOutcome::kMismatch);
}

TEST(AnchorTest, MalformedAnchorsAreInvalidArguments) {
  EXPECT_THROW((void)parse_anchor("[]"), annals::InvalidArgumentError);
  EXPECT_THROW((void)parse_anchor(R"({"position":"1:2","events":1,"digest":"ab","time":"t"})"),
               annals::InvalidArgumentError);
  EXPECT_THROW((void)parse_anchor(R"({"position":"x","events":1,"digest":")" +
                                  std::string(64, '0') + R"(","time":"t"})"),
               annals::InvalidArgumentError);
  EXPECT_THROW((void)verify(test_database_url(),
                            {.stream = "a-1", .anchors = {Anchor{.digest = std::string(64, '0')}}}),
               annals::InvalidArgumentError);
}

}  // namespace
