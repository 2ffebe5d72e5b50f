// The PostgreSQL store's metrics (PostgresEventStoreOptions::metrics; annals/eventstore/
// metrics.hpp) through a recording sink, on a real server: exact append outcomes, events,
// group sizes (one group of five made deterministic by a held row lock), retries and the
// unknown outcome of an append whose connection a TCP proxy cuts after the commit, reads; and
// no series per stream id.
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/testkit/recording_metrics_sink.hpp"
#include "eventually.hpp"
#include "postgres_event_store_internal.hpp"
#include "tcp_proxy.hpp"
#include "test_database.hpp"

namespace {

using annals::AppendResult;
using annals::CounterId;
using annals::EventId;
using annals::ExpectedVersion;
using annals::HistogramId;
using annals::MetricLabels;
using annals::NewEvent;
using annals::StreamAppend;
using annals::StreamId;
using annals::testing::eventually;
using annals::testing::TcpProxy;
using annals::testing::test_database_url;
using annals::testing::unique_stream;
using annals::testkit::RecordingMetricsSink;

constexpr MetricLabels kPostgres{.store = "postgres"};

MetricLabels outcome(const char* word) { return {.store = "postgres", .outcome = word}; }

NewEvent event(int n) {
  return NewEvent{.id = EventId::generate(), .type = "Metered", .data = {{"n", n}}};
}

class PostgresMetricsTest : public ::testing::Test {
 protected:
  std::unique_ptr<annals::EventStore> make_store(const std::string& url,
                                                 std::size_t in_flight = 4) {
    return annals::postgres::make_postgres_event_store({.connection_string = url,
                                                        .pool_size = 4,
                                                        .max_retries_on_broken_connection = 2,
                                                        .group_commit_in_flight = in_flight,
                                                        .metrics = metrics_});
  }

  std::shared_ptr<RecordingMetricsSink> metrics_ = std::make_shared<RecordingMetricsSink>();
};

TEST_F(PostgresMetricsTest, CountsAppendOutcomesEventsGroupsAndReads) {
  auto store = make_store(test_database_url());
  const StreamId stream(unique_stream("metered"));
  const StreamId other(unique_stream("metered"));
  const auto first = event(1);
  store->append(stream, ExpectedVersion::no_stream(), {first});            // ok, a group of 1
  store->append(stream, ExpectedVersion::exact(1), {event(2), event(3)});  // ok, 2 events
  std::vector<StreamAppend> multi;
  multi.push_back(
      {.stream_id = stream, .expected = ExpectedVersion::exact(3), .events = {event(4)}});
  multi.push_back({.stream_id = other,
                   .expected = ExpectedVersion::no_stream(),
                   .events = {event(5), event(6)}});
  store->append_multi(std::move(multi));                         // ok, 3 events
  store->append(stream, ExpectedVersion::no_stream(), {first});  // exact re-send
  EXPECT_THROW(store->append(stream, ExpectedVersion::exact(1), {event(7)}),
               annals::ConcurrencyError);  // conflict
  EXPECT_THROW(store->append(stream, ExpectedVersion::any(), {NewEvent{.type = ""}}),
               annals::InvalidArgumentError);  // rejected
  EXPECT_EQ(store->read_stream(stream).size(), 4u);
  // The global log shows only settled events (other tests may hold transactions open): count
  // what this read returned.
  const auto page = store->read_all({.max_count = 2});

  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("ok")), 3u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("resend")), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("conflict")), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("rejected")), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("unknown")), 0u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendedEvents, kPostgres), 6u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendRetries, kPostgres), 0u);
  EXPECT_EQ(metrics_->observations(HistogramId::kAppendDuration, kPostgres).size(), 6u);
  // Single-event appends go through group commit: the first, the re-send and the conflict
  // (each alone, so groups of 1); the multi-event ones do not.
  const auto groups = metrics_->observations(HistogramId::kAppendGroupSize, kPostgres);
  ASSERT_EQ(groups.size(), 3u);
  for (const auto& g : groups) EXPECT_EQ(g.value, 1.0);
  const MetricLabels stream_reads{.store = "postgres", .kind = "stream"};
  const MetricLabels all_reads{.store = "postgres", .kind = "all"};
  EXPECT_EQ(metrics_->counter(CounterId::kReads, stream_reads), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kReadEvents, stream_reads), 4u);
  EXPECT_EQ(metrics_->counter(CounterId::kReads, all_reads), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kReadEvents, all_reads), page.size());
  for (const auto& series : metrics_->series()) {
    EXPECT_EQ(series.find("metered"), std::string::npos) << "a stream id as a label: " << series;
  }
}

// An open transaction that wrote version 1 of `stream`: a single-event append to that stream
// blocks on it until it ends (as in postgres_group_commit_test).
class HeldVersion {
 public:
  explicit HeldVersion(const StreamId& stream)
      : connection_(test_database_url()), tx_(connection_) {
    tx_.exec_params(
        "SELECT * FROM annals.append_events(ARRAY[$1]::text[], ARRAY[-1]::bigint[], ARRAY[1],"
        " ARRAY[gen_random_uuid()], ARRAY['Held']::text[], ARRAY[1], ARRAY['{}'::jsonb],"
        " ARRAY['{}'::jsonb])",
        stream.value());
  }
  void abort() { tx_.abort(); }

 private:
  pqxx::connection connection_;
  pqxx::work tx_;
};

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

TEST_F(PostgresMetricsTest, ObservesTheSizeOfEachGroup) {
  auto store = make_store(test_database_url(), 1);  // one group at the server at a time
  const StreamId blocked(unique_stream("metblocked"));
  HeldVersion held(blocked);
  auto first = std::async(std::launch::async, [&] {
    return store->append(blocked, ExpectedVersion::any(), {event(0)});
  });
  ASSERT_TRUE(eventually([] { return appends_waiting_on_a_lock() == 1; }));
  std::vector<std::future<AppendResult>> queued;
  for (int i = 0; i < 5; ++i) {
    queued.push_back(std::async(std::launch::async, [&store, i] {
      return store->append(StreamId(unique_stream("metqueued")), ExpectedVersion::no_stream(),
                           {event(i)});
    }));
  }
  ASSERT_TRUE(eventually([&] {
    return annals::postgres::detail::appends_waiting_for_group_for_testing(*store) == 5;
  }));
  held.abort();
  first.get();
  for (auto& q : queued) q.get();
  std::multiset<double> sizes;
  for (const auto& g : metrics_->observations(HistogramId::kAppendGroupSize, kPostgres)) {
    sizes.insert(g.value);
  }
  EXPECT_EQ(sizes, (std::multiset<double>{1.0, 5.0}));
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("ok")), 6u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendedEvents, kPostgres), 6u);
}

// The connection breaks after the server committed; every reconnect is refused: the append
// ends as OutcomeUnknownError after max_retries_on_broken_connection (2) retries.
TEST_F(PostgresMetricsTest, CountsRetriesAndTheUnknownOutcome) {
  TcpProxy proxy(test_database_url());
  auto store = make_store(proxy.url());
  const StreamId stream(unique_stream("metcut"));
  proxy.cut_on_request(stream.value(), TcpProxy::Cut::kAfterServerReplies);
  EXPECT_THROW(store->append(stream, ExpectedVersion::no_stream(), {event(1)}),
               annals::OutcomeUnknownError);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("unknown")), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendRetries, kPostgres), 2u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendedEvents, kPostgres), 0u);

  proxy.heal();
  proxy.refuse_new_connections(true);
  EXPECT_THROW(
      store->append(StreamId(unique_stream("metdown")), ExpectedVersion::any(), {event(2)}),
      annals::UnavailableError);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, outcome("unavailable")), 1u);
}

}  // namespace
