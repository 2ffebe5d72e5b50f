// Unit tests of what is particular to the in-memory store (the shared behaviour is covered by
// the EventStoreContract suite in tests/contract).
#include "annals/eventstore/in_memory_event_store.hpp"

#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/testkit/event_collector.hpp"
#include "annals/testkit/printers.hpp"

namespace annals {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kTimeout = 30s;  // bound for asynchronous delivery

NewEvent event(nlohmann::json data = nlohmann::json::object()) {
  NewEvent out;
  out.type = "Happened";
  out.data = std::move(data);
  return out;
}

SubscriptionOptions poll_never() {
  SubscriptionOptions options;
  options.poll_interval = std::chrono::hours(1);  // only an append notification can wake it
  return options;
}

TEST(InMemoryEventStoreTest, EnforcesConfiguredLimits) {
  InMemoryEventStoreOptions options;
  options.limits.max_events_per_append = 2;
  options.limits.max_data_bytes = 16;
  auto store = make_in_memory_event_store(options);
  const StreamId stream("limits-1");
  EXPECT_NO_THROW(store->append(stream, ExpectedVersion::any(), {event(), event()}));
  EXPECT_THROW(store->append(stream, ExpectedVersion::any(), {event(), event(), event()}),
               InvalidArgumentError);
  EXPECT_THROW(store->append(stream, ExpectedVersion::any(), {event({{"text", "0123456789"}})}),
               InvalidArgumentError);
  EXPECT_EQ(store->stream_version(stream), 2);
}

TEST(InMemoryEventStoreTest, StoresWhatAJsonRoundTripYields) {
  auto store = make_in_memory_event_store();
  const StreamId stream("json-1");
  store->append(stream, ExpectedVersion::any(),
                {event({{"nan", std::numeric_limits<double>::quiet_NaN()}, {"n", 1}})});
  EXPECT_EQ(store->read_stream(stream).at(0).data, (nlohmann::json{{"nan", nullptr}, {"n", 1}}));
}

TEST(InMemoryEventStoreTest, PositionsCountCommitsAndEvents) {
  auto store = make_in_memory_event_store();
  const auto first = store->append(StreamId("p-1"), ExpectedVersion::any(), {event(), event()});
  const auto second = store->append(StreamId("p-2"), ExpectedVersion::any(), {event()});
  EXPECT_EQ(first.position, Position(1, 2));
  EXPECT_EQ(second.position, Position(2, 3));
}

TEST(InMemoryEventStoreTest, RefusedAppendsDoNotConsumePositions) {
  auto store = make_in_memory_event_store();
  const StreamId stream("p-1");
  store->append(stream, ExpectedVersion::any(), {event()});
  EXPECT_THROW(store->append(stream, ExpectedVersion::no_stream(), {event()}), ConcurrencyError);
  const auto next = store->append(stream, ExpectedVersion::any(), {event()});
  EXPECT_EQ(next.position, Position(2, 2));
}

TEST(InMemoryEventStoreTest, IdempotencyErrorNamesTheStream) {
  auto store = make_in_memory_event_store();
  auto stored = event();
  stored.id = EventId::generate();
  store->append(StreamId("a-1"), ExpectedVersion::any(), {stored});
  try {
    store->append(StreamId("b-1"), ExpectedVersion::any(), {stored});
    FAIL() << "no IdempotencyError";
  } catch (const IdempotencyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"b-1\""));
  }
}

TEST(InMemoryEventStoreTest, LiveDeliveryIsWokenByTheAppendNotPolling) {
  auto store = make_in_memory_event_store();
  const StreamId stream("live-1");
  const auto first = store->append(stream, ExpectedVersion::any(), {event()});
  testkit::EventCollector collector;
  auto subscription = store->subscribe(poll_never(), collector.handler());
  ASSERT_TRUE(subscription->wait_for(first.position, kTimeout));
  // The subscription is waiting now (or about to): only the notification can deliver this
  // within the timeout, the poll interval is an hour.
  const auto second = store->append(stream, ExpectedVersion::any(), {event()});
  ASSERT_TRUE(subscription->wait_for(second.position, kTimeout));
  EXPECT_EQ(collector.size(), 2u);
}

TEST(InMemoryEventStoreTest, SubscriptionMayOutliveTheStore) {
  auto store = make_in_memory_event_store();
  const auto result = store->append(StreamId("outlive-1"), ExpectedVersion::any(), {event()});
  testkit::EventCollector collector;
  auto subscription = store->subscribe(poll_never(), collector.handler());
  ASSERT_TRUE(subscription->wait_for(result.position, kTimeout));
  store.reset();
  EXPECT_TRUE(subscription->is_running());
  subscription->stop();
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(collector.size(), 1u);
}

TEST(InMemoryEventStoreTest, HandlerMayAppendToTheStore) {
  auto store = make_in_memory_event_store();
  const StreamId source("source-1");
  const StreamId target("target-1");
  SubscriptionOptions options = poll_never();
  options.filter.category = "source";
  auto subscription = store->subscribe(options, [&](const RecordedEvent& e) {
    store->append(target, ExpectedVersion::any(), {event({{"from", e.version}})});
  });
  store->append(source, ExpectedVersion::any(), {event(), event(), event()});
  const auto log = store->read_stream(source);
  ASSERT_TRUE(subscription->wait_for(log.back().position, kTimeout));
  subscription->stop();
  EXPECT_EQ(store->stream_version(target), 3);
}

// The example of docs/concepts.md, "Appending JSON text" (the behaviour is the
// EventStoreContract's, on both stores).
TEST(InMemoryEventStoreTest, AppendsJsonTextAsTheConceptsPageShows) {
  auto store = make_in_memory_event_store();
  const StreamId stream("account-42");
  std::string message;
  // docs:begin append-json-text
  // Data and metadata that are JSON text already (your serializer's output, a message you
  // received) are appended as they are: no nlohmann::json tree is built.
  annals::NewEvent event;
  event.type = "MoneyDeposited";
  event.data_json = R"({"amount_cents": 1250, "currency": "EUR"})";
  event.metadata_json = R"({"correlation_id": "req-7"})";
  store->append(stream, annals::ExpectedVersion::no_stream(), {event});

  // Text that is not what a tree could be is refused before anything is sent.
  event.data_json = R"({"amount_cents": 1250,})";
  try {
    store->append(stream, annals::ExpectedVersion::exact(1), {event});
  } catch (const annals::InvalidArgumentError& e) {
    message = e.what();  // ...: data_json is not JSON: unexpected character '}' at byte offset 22
  }
  // docs:end
  EXPECT_EQ(message,
            "invalid event 0 of the append to stream \"account-42\": data_json is not JSON: "
            "unexpected character '}' at byte offset 22");
  const auto log = store->read_stream(stream);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].data, (nlohmann::json{{"amount_cents", 1250}, {"currency", "EUR"}}));
  EXPECT_EQ(log[0].metadata, (nlohmann::json{{"correlation_id", "req-7"}}));
}

}  // namespace
}  // namespace annals
