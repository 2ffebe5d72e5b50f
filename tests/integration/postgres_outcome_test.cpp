// Honest outcomes: an append whose request reached the wire before its connection
// broke may have committed, so it reports OutcomeUnknownError, also when every reconnect
// attempt afterwards fails; and its retry with the same event ids returns the original result
// when it had committed, or writes it when it had not. The connection is broken by a TCP proxy
// (tests/support/tcp_proxy.hpp) at an exact point: before the server sees the request, or
// after the server committed it and replied; from then on the proxy refuses reconnects until
// the test heals it. Deterministic: no sleeps, no timing.
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "eventually.hpp"
#include "postgres_event_store_internal.hpp"
#include "tcp_proxy.hpp"
#include "test_database.hpp"

namespace {

using annals::testing::eventually;

using annals::AppendResult;
using annals::EventId;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamAppend;
using annals::StreamId;
using annals::testing::TcpProxy;
using annals::testing::test_database_url;
using annals::testing::unique_stream;
using Cut = TcpProxy::Cut;

NewEvent event_with_id(int n) {
  return NewEvent{.id = EventId::generate(), .type = "Recorded", .data = {{"n", n}}};
}

std::unique_ptr<annals::EventStore> store_via(const TcpProxy& proxy, std::size_t in_flight = 4) {
  return annals::postgres::make_postgres_event_store(
      {.connection_string = proxy.url(), .pool_size = 4, .group_commit_in_flight = in_flight});
}

// A store that talks to the server directly, to see what is really stored.
annals::EventStore& direct_store() {
  static const auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
  return *store;
}

// The cut fired once, and the store tried to reconnect at least max_retries times (default 2)
// and was refused every time: the outcome must still be "unknown", not "nothing written".
void expect_cut_then_refused(const TcpProxy& proxy) {
  EXPECT_EQ(proxy.cuts(), 1U);
  EXPECT_GE(proxy.refused(), 2U);
}

// --- Single append ---------------------------------------------------------------------------

TEST(PostgresOutcomeTest, SingleAppendCutAfterCommitIsOutcomeUnknownAndItsRetryReturnsIt) {
  TcpProxy proxy(test_database_url());
  auto store = store_via(proxy);
  const StreamId stream(unique_stream("outcome"));
  const auto event = event_with_id(1);

  proxy.cut_on_request(stream.value(), Cut::kAfterServerReplies);
  EXPECT_THROW(store->append(stream, ExpectedVersion::no_stream(), {event}),
               annals::OutcomeUnknownError);
  expect_cut_then_refused(proxy);
  const auto stored = direct_store().read_stream(stream);
  ASSERT_EQ(stored.size(), 1U) << "the server committed before its reply was dropped";

  proxy.heal();
  const auto again = store->append(stream, ExpectedVersion::no_stream(), {event});
  EXPECT_EQ(again.position, stored[0].position);
  EXPECT_EQ(again.last_version, 1);
  EXPECT_EQ(direct_store().read_stream(stream).size(), 1U);
}

TEST(PostgresOutcomeTest, SingleAppendCutBeforeTheServerIsOutcomeUnknownAndItsRetryWritesIt) {
  TcpProxy proxy(test_database_url());
  auto store = store_via(proxy);
  const StreamId stream(unique_stream("outcome"));
  const auto event = event_with_id(1);

  proxy.cut_on_request(stream.value(), Cut::kBeforeServer);
  EXPECT_THROW(store->append(stream, ExpectedVersion::no_stream(), {event}),
               annals::OutcomeUnknownError);
  expect_cut_then_refused(proxy);
  EXPECT_TRUE(direct_store().read_stream(stream).empty());

  proxy.heal();
  const auto written = store->append(stream, ExpectedVersion::no_stream(), {event});
  EXPECT_EQ(written.last_version, 1);
  const auto stored = direct_store().read_stream(stream);
  ASSERT_EQ(stored.size(), 1U);
  EXPECT_EQ(stored[0].id, *event.id);
  EXPECT_EQ(stored[0].position, written.position);
}

// A connection that cannot be opened at all, before anything was sent, is still "nothing
// written": the doubt starts only once a request left.
TEST(PostgresOutcomeTest, AppendThatNeverReachedAConnectionIsUnavailable) {
  TcpProxy proxy(test_database_url());
  auto store = store_via(proxy);
  const StreamId stream(unique_stream("outcome"));
  proxy.refuse_new_connections(true);
  try {
    store->append(stream, ExpectedVersion::any(), {event_with_id(1)});
    FAIL() << "expected UnavailableError";
  } catch (const annals::OutcomeUnknownError& e) {
    FAIL() << "nothing was sent, yet: " << e.what();
  } catch (const annals::UnavailableError&) {
  }
  EXPECT_TRUE(direct_store().read_stream(stream).empty());
}

// --- Grouped appends -------------------------------------------------------------------------

// Backends of the test database waiting for another transaction's row.
int appends_waiting_on_a_lock() {
  pqxx::connection admin(test_database_url());
  pqxx::nontransaction tx(admin);
  return tx
      .exec1(
          "SELECT count(*)::int FROM pg_stat_activity"
          " WHERE datname = current_database() AND wait_event_type = 'Lock'"
          "   AND query LIKE 'INSERT INTO annals.events AS ev (stream_id,%'")[0]
      .as<int>();
}

// Runs `count` single-event appends through `store` (one group-commit slot) as one group: a
// first append is held at the server by a transaction that wrote its stream's version 1, the
// others queue behind it, and the held transaction is then rolled back. The group's streams
// share `tag`, which the first append's stream does not carry.
struct QueuedGroup {
  std::vector<StreamId> streams;
  std::vector<NewEvent> events;
  std::vector<std::future<AppendResult>> results;
};

QueuedGroup run_as_one_group(annals::EventStore& store, const std::string& tag, int count) {
  const StreamId blocked(unique_stream("outblocked"));
  pqxx::connection holder(test_database_url());
  pqxx::work held(holder);
  held.exec_params(
      "SELECT * FROM annals.append_events(ARRAY[$1]::text[], ARRAY[-1]::bigint[], ARRAY[1],"
      " ARRAY[gen_random_uuid()], ARRAY['Held']::text[], ARRAY[1], ARRAY['{}'::jsonb],"
      " ARRAY['{}'::jsonb])",
      blocked.value());
  auto first = std::async(std::launch::async, [&] {
    return store.append(blocked, ExpectedVersion::any(), {event_with_id(0)});
  });
  EXPECT_TRUE(eventually([] { return appends_waiting_on_a_lock() == 1; }));

  QueuedGroup group;
  for (int i = 0; i < count; ++i) {
    group.streams.emplace_back(tag + "x" + std::to_string(i));
    group.events.push_back(event_with_id(i));
  }
  for (int i = 0; i < count; ++i) {
    group.results.push_back(std::async(std::launch::async, [&store, &group, i] {
      const auto index = static_cast<std::size_t>(i);
      return store.append(group.streams[index], ExpectedVersion::no_stream(),
                          {group.events[index]});
    }));
  }
  EXPECT_TRUE(eventually([&] {
    return annals::postgres::detail::appends_waiting_for_group_for_testing(store) ==
           static_cast<std::size_t>(count);
  }));
  held.abort();
  EXPECT_EQ(first.get().last_version, 1);
  return group;
}

void expect_all_outcome_unknown(QueuedGroup& group) {
  for (auto& result : group.results) EXPECT_THROW(result.get(), annals::OutcomeUnknownError);
}

TEST(PostgresOutcomeTest, GroupedAppendsCutAfterCommitAreOutcomeUnknownAndTheirRetriesReturnThem) {
  TcpProxy proxy(test_database_url());
  auto store = store_via(proxy, 1);
  const std::string tag = unique_stream("outgroup");
  proxy.cut_on_request(tag, Cut::kAfterServerReplies);
  auto group = run_as_one_group(*store, tag, 3);
  expect_all_outcome_unknown(group);
  expect_cut_then_refused(proxy);

  proxy.heal();
  std::vector<annals::Position> positions;
  for (std::size_t i = 0; i < group.streams.size(); ++i) {
    const auto stored = direct_store().read_stream(group.streams[i]);
    ASSERT_EQ(stored.size(), 1U) << "the group committed before its reply was dropped";
    const auto again =
        store->append(group.streams[i], ExpectedVersion::no_stream(), {group.events[i]});
    EXPECT_EQ(again.position, stored[0].position);
    positions.push_back(again.position);
    EXPECT_EQ(direct_store().read_stream(group.streams[i]).size(), 1U);
  }
  EXPECT_EQ(positions.front().commit(), positions.back().commit())
      << "the three appends had been written as one group";
}

TEST(PostgresOutcomeTest, GroupedAppendsCutBeforeTheServerAreOutcomeUnknownAndTheirRetriesWrite) {
  TcpProxy proxy(test_database_url());
  auto store = store_via(proxy, 1);
  const std::string tag = unique_stream("outgroup");
  proxy.cut_on_request(tag, Cut::kBeforeServer);
  auto group = run_as_one_group(*store, tag, 3);
  expect_all_outcome_unknown(group);
  expect_cut_then_refused(proxy);

  proxy.heal();
  for (std::size_t i = 0; i < group.streams.size(); ++i) {
    EXPECT_TRUE(direct_store().read_stream(group.streams[i]).empty());
    const auto written =
        store->append(group.streams[i], ExpectedVersion::no_stream(), {group.events[i]});
    EXPECT_EQ(written.last_version, 1);
    const auto stored = direct_store().read_stream(group.streams[i]);
    ASSERT_EQ(stored.size(), 1U);
    EXPECT_EQ(stored[0].id, *group.events[i].id);
  }
}

// --- Multi-stream append ---------------------------------------------------------------------

std::vector<StreamAppend> two_streams(const std::string& tag, const NewEvent& a,
                                      const NewEvent& b) {
  std::vector<StreamAppend> appends;
  appends.push_back(
      {.stream_id = StreamId(tag + "xa"), .expected = ExpectedVersion::no_stream(), .events = {a}});
  appends.push_back({.stream_id = StreamId(tag + "xb"),
                     .expected = ExpectedVersion::no_stream(),
                     .events = {b, event_with_id(3)}});
  return appends;
}

TEST(PostgresOutcomeTest, MultiStreamAppendCutAfterCommitIsOutcomeUnknownAndItsRetryReturnsIt) {
  TcpProxy proxy(test_database_url());
  auto store = store_via(proxy);
  const std::string tag = unique_stream("outmulti");
  auto appends = two_streams(tag, event_with_id(1), event_with_id(2));
  proxy.cut_on_request(tag, Cut::kAfterServerReplies);
  EXPECT_THROW(store->append_multi(appends), annals::OutcomeUnknownError);
  expect_cut_then_refused(proxy);
  const auto stored_a = direct_store().read_stream(appends[0].stream_id);
  const auto stored_b = direct_store().read_stream(appends[1].stream_id);
  ASSERT_EQ(stored_a.size(), 1U);
  ASSERT_EQ(stored_b.size(), 2U);

  proxy.heal();
  const auto again = store->append_multi(appends);
  ASSERT_EQ(again.size(), 2U);
  EXPECT_EQ(again[0].position, stored_a[0].position);
  EXPECT_EQ(again[1].position, stored_b[1].position);
  EXPECT_EQ(again[1].last_version, 2);
  EXPECT_EQ(direct_store().read_stream(appends[1].stream_id).size(), 2U);
}

TEST(PostgresOutcomeTest, MultiStreamAppendCutBeforeTheServerIsOutcomeUnknownAndItsRetryWritesIt) {
  TcpProxy proxy(test_database_url());
  auto store = store_via(proxy);
  const std::string tag = unique_stream("outmulti");
  auto appends = two_streams(tag, event_with_id(1), event_with_id(2));
  proxy.cut_on_request(tag, Cut::kBeforeServer);
  EXPECT_THROW(store->append_multi(appends), annals::OutcomeUnknownError);
  expect_cut_then_refused(proxy);
  EXPECT_TRUE(direct_store().read_stream(appends[0].stream_id).empty());
  EXPECT_TRUE(direct_store().read_stream(appends[1].stream_id).empty());

  proxy.heal();
  const auto written = store->append_multi(appends);
  ASSERT_EQ(written.size(), 2U);
  EXPECT_EQ(written[1].last_version, 2);
  EXPECT_EQ(direct_store().read_stream(appends[0].stream_id).size(), 1U);
  EXPECT_EQ(direct_store().read_stream(appends[1].stream_id).size(), 2U);
}

}  // namespace
