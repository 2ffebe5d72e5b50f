// Restores into another cluster (sql/0013, annals/postgres/restore.hpp): a store dumped from a
// cluster whose transaction ids are far ahead and restored into a fresh cluster opens after
// `restore-check --fix`, appends and reads on, and a reader that stopped at a position before
// the move continues from it without skipping or repeating an event. Two private clusters
// (tests/support/private_cluster.hpp), real pg_dump and pg_restore.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/restore.hpp"
#include "annals/postgres/verify.hpp"
#include "private_cluster.hpp"
#include "run_process.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::ReadAllOptions;
using annals::RecordedEvent;
using annals::StreamId;
using annals::testing::PrivateCluster;
using annals::testing::run_process;

// 4 * 2^20: the source cluster's ids start there, far ahead of a fresh cluster's (~750).
constexpr std::uint64_t kSourceNextXid = 4194304;

std::unique_ptr<annals::EventStore> open_store(const std::string& url) {
  return annals::postgres::make_postgres_event_store({.connection_string = url, .pool_size = 2});
}

std::vector<RecordedEvent> read_everything_after(annals::EventStore& store, Position after) {
  std::vector<RecordedEvent> all;
  for (;;) {
    auto page = store.read_all(ReadAllOptions{.after = after, .max_count = 100});
    if (page.empty()) return all;
    after = page.back().position;
    for (auto& event : page) all.push_back(std::move(event));
  }
}

std::vector<std::string> types_of(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> types;
  for (const auto& e : events) types.push_back(e.type);
  return types;
}

// The URL of database `name` on the server of `url` (same host, port and user).
std::string database_url(const std::string& url, const std::string& name) {
  return url.substr(0, url.rfind('/') + 1) + name;
}

class RestoreTest : public ::testing::Test {
 protected:
  // The source: a cluster with ids far ahead, a store with history, a reader's position.
  void SetUp() override {
    source_.restart_with_next_xid(kSourceNextXid);
    auto store = open_store(source_.url());
    store->append(StreamId("acct-1"), ExpectedVersion::no_stream(),
                  {NewEvent{.type = "Opened", .data = {{"owner", "Ada"}}},
                   NewEvent{.type = "Deposited", .data = {{"amount", 10}}}});
    store->append(StreamId("acct-2"), ExpectedVersion::no_stream(),
                  {NewEvent{.type = "Opened", .data = {{"owner", "Grace"}}}});
    // A reader (a subscription, a projection's checkpoint) has seen everything so far.
    const auto seen = read_everything_after(*store, Position::start());
    ASSERT_EQ(seen.size(), 3U);
    reader_position_ = seen.back().position;
    ASSERT_GE(reader_position_.commit(), kSourceNextXid);
    // One more event the reader has not seen yet when the store moves.
    store->append(StreamId("acct-1"), ExpectedVersion::exact(2),
                  {NewEvent{.type = "Withdrawn", .data = {{"amount", 3}}}});
  }

  // pg_dump of the source store, pg_restore into a new database of the target cluster.
  std::string dump_and_restore() {
    const auto dump = std::filesystem::temp_directory_path() /
                      ("annals-restore-" + std::to_string(::getpid()) + ".dump");
    const auto dumped = run_process({source_.program("pg_dump").string(), "--format=custom",
                                     "--file=" + dump.string(), source_.url()});
    EXPECT_EQ(dumped.exit_code, 0) << dumped;
    {
      pqxx::connection admin(target_.admin_url());
      pqxx::nontransaction tx(admin);
      tx.exec("CREATE DATABASE restored");
    }
    const auto url = database_url(target_.url(), "restored");
    // Roles are cluster-wide and not in the dump: restore without owners and grants, as a
    // move to a managed service would (the role layout is configured again there).
    const auto restored =
        run_process({target_.program("pg_restore").string(), "--no-owner", "--no-privileges",
                     "--exit-on-error", "--dbname=" + url, dump.string()});
    std::filesystem::remove(dump);
    EXPECT_EQ(restored.exit_code, 0) << restored;
    return url;
  }

  PrivateCluster source_;
  PrivateCluster target_;
  Position reader_position_;
};

TEST_F(RestoreTest, ARestoredStoreOpensAfterTheFixAndReadersContinueWithoutSkipsOrRepeats) {
  const auto url = dump_and_restore();

  // Before the fix: refused, and restore-check says why.
  EXPECT_THROW(open_store(url), annals::CorruptionError);
  const auto before = annals::postgres::check_restore(url);
  ASSERT_TRUE(before.stored_max.has_value());
  EXPECT_GE(*before.stored_max, kSourceNextXid);
  EXPECT_LT(before.server_next, 100000U) << "the target cluster's counter is far behind";
  EXPECT_EQ(before.offset, 0U);
  EXPECT_TRUE(before.needs_fix());

  const auto fix = annals::postgres::fix_restore(url);
  EXPECT_EQ(fix.old_offset, 0U);
  EXPECT_GT(fix.new_offset, 0U);
  EXPECT_FALSE(fix.after.needs_fix());
  EXPECT_GT(fix.after.server_next, *before.stored_max);
  // Safe to repeat: nothing left to fix.
  const auto again = annals::postgres::fix_restore(url);
  EXPECT_EQ(again.old_offset, fix.new_offset);
  EXPECT_EQ(again.new_offset, fix.new_offset);

  // The store opens, appends and reads on.
  auto store = open_store(url);
  store->append(StreamId("acct-2"), ExpectedVersion::exact(1),
                {NewEvent{.type = "Deposited", .data = {{"amount", 5}}}});
  store->append(StreamId("acct-3"), ExpectedVersion::no_stream(),
                {NewEvent{.type = "Opened", .data = {{"owner", "Edsger"}}}});

  // The reader that stopped before the move continues from its position: the one event it
  // had not seen (appended on the source), then the new ones, each once, in order.
  const auto rest = read_everything_after(*store, reader_position_);
  EXPECT_EQ(types_of(rest), (std::vector<std::string>{"Withdrawn", "Deposited", "Opened"}));
  ASSERT_EQ(rest.size(), 3U);
  EXPECT_EQ(rest[0].stream_id.value(), "acct-1");
  EXPECT_GT(rest[1].position.commit(), *before.stored_max) << "new ids above every stored one";

  // The whole log: old and new in one strictly increasing order.
  const auto all = read_everything_after(*store, Position::start());
  ASSERT_EQ(all.size(), 6U);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].position, all[i].position);
  EXPECT_EQ(store->read_stream(StreamId("acct-1")).size(), 3U);

  // History still verifies: the chains, and the store's functions (the offset in
  // annals.xid_offset() is the one body verify accepts changed).
  const auto report = annals::postgres::verify(url);
  EXPECT_TRUE(report.findings.empty()) << report.findings.front().message;

  // Any other body of annals.xid_offset() is a replaced function.
  {
    pqxx::connection owner(url);
    pqxx::nontransaction tx(owner);
    tx.exec(
        "CREATE OR REPLACE FUNCTION annals.xid_offset() RETURNS bigint LANGUAGE sql IMMUTABLE "
        "PARALLEL SAFE AS 'SELECT " +
        std::to_string(fix.new_offset) + "::bigint + 0'");
  }
  const auto replaced = annals::postgres::verify(url);
  ASSERT_FALSE(replaced.findings.empty());
  EXPECT_EQ(replaced.findings.front().kind, annals::postgres::FindingKind::kFunctionChanged)
      << replaced.findings.front().message;
}

// Never-skip after the move: a transaction that appended and stays open holds readers back
// while later appends commit, exactly as before the move (decision 5, with the offset).
TEST_F(RestoreTest, AHeldTransactionStillHoldsReadersBackAfterTheFix) {
  const auto url = dump_and_restore();
  annals::postgres::fix_restore(url);
  auto store = open_store(url);
  const auto head = read_everything_after(*store, Position::start()).back().position;

  pqxx::connection holder(url);
  pqxx::work held(holder);
  held.exec(
      "SELECT * FROM annals.append_events(ARRAY['held-1'], ARRAY[-1]::bigint[], ARRAY[1], "
      "ARRAY[gen_random_uuid()], ARRAY['Held'], ARRAY[1], ARRAY['{}'::jsonb], "
      "ARRAY['{}'::jsonb])");
  store->append(StreamId("later-1"), ExpectedVersion::no_stream(), {NewEvent{.type = "Later"}});

  EXPECT_TRUE(read_everything_after(*store, head).empty())
      << "a reader must not pass the open transaction's event";
  held.commit();
  EXPECT_EQ(types_of(read_everything_after(*store, head)),
            (std::vector<std::string>{"Held", "Later"}));
}

// The fix refuses while another session is connected, and changes nothing.
TEST_F(RestoreTest, TheFixRefusesWhileAnotherSessionIsConnected) {
  const auto url = dump_and_restore();
  {
    pqxx::connection other(url);
    EXPECT_THROW(annals::postgres::fix_restore(url), annals::postgres::RestoreBlockedError);
    const auto status = annals::postgres::check_restore(url);
    EXPECT_EQ(status.offset, 0U);
    EXPECT_TRUE(status.needs_fix());
    EXPECT_EQ(status.other_sessions, 1);
  }
  EXPECT_GT(annals::postgres::fix_restore(url).new_offset, 0U);
}

// `annals restore-check`: exit 8 and the JSON keys before the fix, exit 0 after `--fix`.
TEST_F(RestoreTest, TheCliChecksAndFixes) {
  const auto url = dump_and_restore();
  const auto check = run_process({ANNALS_CLI_PATH, "restore-check", "--json", "--db", url});
  EXPECT_EQ(check.exit_code, 8) << check;
  const auto json = nlohmann::json::parse(check.out);
  EXPECT_TRUE(json.at("needs_fix").get<bool>());
  EXPECT_GE(json.at("stored_max").get<std::uint64_t>(), kSourceNextXid);
  EXPECT_EQ(json.at("offset").get<std::uint64_t>(), 0U);
  EXPECT_TRUE(json.contains("server_next"));
  EXPECT_TRUE(json.contains("other_sessions"));

  const auto fixed = run_process({ANNALS_CLI_PATH, "restore-check", "--fix", "--db", url});
  EXPECT_EQ(fixed.exit_code, 0) << fixed;
  EXPECT_NE(fixed.out.find("fixed: offset 0 -> "), std::string::npos) << fixed;
  const auto after = run_process({ANNALS_CLI_PATH, "restore-check", "--db", url});
  EXPECT_EQ(after.exit_code, 0) << after;
  EXPECT_NE(after.out.find("ok: nothing to fix"), std::string::npos) << after;
}

}  // namespace
