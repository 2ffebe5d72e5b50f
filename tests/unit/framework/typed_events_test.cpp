// Typed handlers on every read path (issue 15): which stored names reach a type (renames and
// splits walked backwards), dispatch of current, upgraded, renamed and split events with their
// context, skipping, the typed errors of events that do not decode, and the typed read of the
// global log and typed subscriptions on the in-memory store.
#include "annals/framework/typed_events.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/framework/errors.hpp"
#include "wallet.hpp"

namespace {

using annals::EventContext;
using annals::EventHandlers;
using annals::EventRegistry;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using wallet::WalletCreated;
using wallet::WalletCredited;

EventRegistry wallet_registry() {
  EventRegistry registry;
  wallet::register_wallet(registry);
  return registry;
}

annals::RecordedEvent stored(std::string type, std::int32_t schema, nlohmann::json data,
                             annals::StreamVersion version = 4) {
  return annals::RecordedEvent{
      .stream_id = annals::StreamId("wallet-9"),
      .version = version,
      .position = annals::Position(7, 40 + version),
      .id = annals::EventId::generate(),
      .type = std::move(type),
      .schema_version = schema,
      .data = std::move(data),
      .metadata = {{"traceparent", "00-abc-01"}},
      .recorded_at = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000))};
}

// What a handler saw: the event and its context, copied.
struct Seen {
  std::string type;
  std::int64_t cents = 0;
  std::string stored_type;
  std::int32_t stored_version = 0;
  std::size_t part = 0;
  std::size_t parts = 0;
  std::string stream;
  annals::StreamVersion version = 0;
  std::string traceparent;
  friend bool operator==(const Seen&, const Seen&) = default;
};

EventHandlers<> recording(const EventRegistry& registry, std::vector<Seen>& seen) {
  EventHandlers<> handlers(registry);
  handlers.on<WalletCredited>([&seen](const WalletCredited& e, const EventContext& c) {
    seen.push_back({"WalletCredited", e.amount_cents, c.stored_type(), c.stored_schema_version(),
                    c.part(), c.parts(), c.stream_id().value(), c.version(),
                    c.metadata().value("traceparent", "")});
  });
  return handlers;
}

TEST(TypedEventsTest, SourceTypesWalkRenamesAndSplitsBackwards) {
  const auto registry = wallet_registry();
  // FundsAdded was renamed WalletCredited; WalletOpenedWithFunds split into both types.
  EXPECT_THAT(registry.source_types("WalletCredited"),
              ElementsAre("FundsAdded", "WalletCredited", "WalletOpenedWithFunds"));
  EXPECT_THAT(registry.source_types<WalletCreated>(),
              ElementsAre("WalletCreated", "WalletOpenedWithFunds"));
  EXPECT_TRUE(registry.source_types("FundsAdded").empty());  // an old name, not a type
  EXPECT_TRUE(registry.source_types("NoSuchType").empty());
}

TEST(TypedEventsTest, TheFilterOfHandlersIncludesOldNames) {
  const auto registry = wallet_registry();
  std::vector<Seen> seen;
  const auto handlers = recording(registry, seen);
  const auto filter = handlers.filter("wallet");
  EXPECT_EQ(filter.category, "wallet");
  EXPECT_THAT(filter.event_types,
              ElementsAre("FundsAdded", "WalletCredited", "WalletOpenedWithFunds"));
}

TEST(TypedEventsTest, DispatchesCurrentUpgradedRenamedAndSplitEventsWithTheirContext) {
  const auto registry = wallet_registry();
  std::vector<Seen> seen;
  const auto handlers = recording(registry, seen);
  EXPECT_EQ(
      handlers.dispatch(stored("WalletCredited", 3, {{"amount_cents", 5}, {"currency", "EUR"}}, 1)),
      1U);
  EXPECT_EQ(handlers.dispatch(stored("FundsAdded", 1, {{"amount", 2}}, 2)), 1U);
  EXPECT_EQ(handlers.dispatch(stored("FundsAdded", 2, {{"amount_cents", 7}}, 3)), 1U);
  // A split: the WalletCreated part has no handler here, the FundsAdded part does.
  EXPECT_EQ(
      handlers.dispatch(stored("WalletOpenedWithFunds", 1, {{"owner", "ada"}, {"initial", 3}}, 4)),
      1U);
  EXPECT_THAT(
      seen,
      ElementsAre(Seen{"WalletCredited", 5, "WalletCredited", 3, 0, 1, "wallet-9", 1, "00-abc-01"},
                  Seen{"WalletCredited", 200, "FundsAdded", 1, 0, 1, "wallet-9", 2, "00-abc-01"},
                  Seen{"WalletCredited", 7, "FundsAdded", 2, 0, 1, "wallet-9", 3, "00-abc-01"},
                  Seen{"WalletCredited", 300, "WalletOpenedWithFunds", 1, 1, 2, "wallet-9", 4,
                       "00-abc-01"}));
}

TEST(TypedEventsTest, EventsThatCannotReachAHandlerAreSkippedWithoutDecoding) {
  const auto registry = wallet_registry();
  std::vector<Seen> seen;
  const auto handlers = recording(registry, seen);
  // A registered type without a handler: its JSON is not even looked at.
  EXPECT_EQ(handlers.dispatch(stored("WalletCreated", 3, "not an object")), 0U);
  // An unknown type that no chain leads from.
  EXPECT_EQ(handlers.dispatch(stored("Mystery", 1, {{"x", 1}})), 0U);
  EXPECT_TRUE(seen.empty());
}

TEST(TypedEventsTest, JsonThatDoesNotFitTheStructThrowsACorruptionErrorNamingTheEvent) {
  const auto registry = wallet_registry();
  std::vector<Seen> seen;
  const auto handlers = recording(registry, seen);
  try {
    static_cast<void>(handlers.dispatch(stored("WalletCredited", 3, {{"amount_cents", "ten"}}, 6)));
    FAIL() << "expected a CorruptionError";
  } catch (const annals::CorruptionError& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"WalletCredited\" v3"));
    EXPECT_THAT(e.what(), HasSubstr("version 6 of stream \"wallet-9\""));
  }
  // An upcaster that fails on the stored JSON (FundsAdded v1 needs "amount").
  EXPECT_THROW(static_cast<void>(handlers.dispatch(stored("FundsAdded", 1, {{"cents", 1}}))),
               annals::CorruptionError);
  EXPECT_TRUE(seen.empty());
}

TEST(TypedEventsTest, AVersionNoUpcasterReadsThrowsUnknownEventType) {
  const auto registry = wallet_registry();
  std::vector<Seen> seen;
  const auto handlers = recording(registry, seen);
  // Written by a newer release: WalletCredited v4.
  try {
    static_cast<void>(handlers.dispatch(stored("WalletCredited", 4, {{"amount_cents", 1}}, 8)));
    FAIL() << "expected an UnknownEventTypeError";
  } catch (const annals::UnknownEventTypeError& e) {
    EXPECT_EQ(e.type(), "WalletCredited");
    EXPECT_EQ(e.schema_version(), 4);
    EXPECT_THAT(e.what(), HasSubstr("wallet-9"));
  }
}

TEST(TypedEventsTest, AnUndecodableStoredRowThrowsACorruptionError) {
  const auto registry = wallet_registry();
  std::vector<Seen> seen;
  const auto handlers = recording(registry, seen);
  auto event = stored("WalletCredited", 3, nullptr);
  event.decode_failure = annals::DecodeFailure{.reason = "bad bytes"};
  EXPECT_THROW(static_cast<void>(handlers.dispatch(event)), annals::CorruptionError);
}

TEST(TypedEventsTest, DeclaringHandlersWrongIsRefused) {
  const auto registry = wallet_registry();
  EventHandlers<> no_registry;
  EXPECT_THROW(no_registry.on<WalletCredited>([](const WalletCredited&) {}),
               annals::InvalidArgumentError);
  EventRegistry empty;
  EventHandlers<> unregistered(empty);
  EXPECT_THROW(unregistered.on<WalletCredited>([](const WalletCredited&) {}),
               annals::InvalidArgumentError);
  EventHandlers<> twice(registry);
  twice.on<WalletCredited>([](const WalletCredited&) {});
  EXPECT_THROW(twice.on<WalletCredited>([](const WalletCredited&) {}),
               annals::InvalidArgumentError);
}

TEST(TypedEventsTest, ExtraArgumentsReachTheHandler) {
  const auto registry = wallet_registry();
  EventHandlers<int&> handlers(registry);
  handlers.on<WalletCredited>([](const WalletCredited& e, const EventContext&, int& total) {
    total += static_cast<int>(e.amount_cents);
  });
  handlers.on<WalletCreated>([](const WalletCreated&, int& total) { total += 1000; });
  int total = 0;
  static_cast<void>(handlers.dispatch(
      stored("WalletOpenedWithFunds", 1, {{"owner", "ada"}, {"initial", 1}}), total));
  EXPECT_EQ(total, 1100);
}

// Appends a history with every stored form of the wallet's events, plus noise.
void append_history(annals::EventStore& store) {
  const annals::StreamId w("wallet-1");
  store.append(
      w, annals::ExpectedVersion::any(),
      {wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "ada"}, {"initial", 1}}),
       wallet::raw("FundsAdded", 1, {{"amount", 2}}), wallet::raw("Mystery", 1, {{"x", 1}}),
       wallet::raw("FundsAdded", 2, {{"amount_cents", 30}}),
       wallet::raw("WalletCredited", 3, {{"amount_cents", 4}, {"currency", "EUR"}})});
}

TEST(TypedEventsTest, ReadAllTypedReadsRenamedTypesUnderTheirOldNames) {
  const auto registry = wallet_registry();
  auto store = annals::make_in_memory_event_store();
  append_history(*store);
  std::vector<std::int64_t> cents;
  EventHandlers<> handlers(registry);
  handlers.on<WalletCredited>([&](const WalletCredited& e) { cents.push_back(e.amount_cents); });
  const auto result = annals::read_all_typed(*store, handlers, {.max_count = 10});
  EXPECT_THAT(cents, ElementsAre(100, 200, 30, 4));
  EXPECT_EQ(result.read, 4U);  // "Mystery" is not read: the filter has the stored names only
  EXPECT_EQ(result.handled, 4U);
  EXPECT_EQ(result.last_position, store->head_position());
  // Paging: continue from last_position.
  const auto next = annals::read_all_typed(*store, handlers, {.after = result.last_position});
  EXPECT_EQ(next.read, 0U);
  EXPECT_EQ(next.last_position, result.last_position);
}

TEST(TypedEventsTest, SubscribeTypedDeliversUpcastEventsInLogOrder) {
  const auto registry = wallet_registry();
  auto store = annals::make_in_memory_event_store();
  append_history(*store);
  std::mutex mutex;
  std::vector<std::string> seen;
  EventHandlers<> handlers(registry);
  handlers.on<WalletCredited>([&](const WalletCredited& e, const EventContext& c) {
    const std::lock_guard lock(mutex);
    seen.push_back(c.stored_type() + ":" + std::to_string(e.amount_cents));
  });
  handlers.on<WalletCreated>([&](const WalletCreated& e) {
    const std::lock_guard lock(mutex);
    seen.push_back("created:" + e.owner_name);
  });
  auto subscription = annals::subscribe_typed(*store, std::move(handlers));
  ASSERT_TRUE(subscription->wait_for(store->head_position(), std::chrono::seconds(10)));
  subscription->stop();
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  const std::lock_guard lock(mutex);
  EXPECT_THAT(seen, ElementsAre("created:ada", "WalletOpenedWithFunds:100", "FundsAdded:200",
                                "FundsAdded:30", "WalletCredited:4"));
}

TEST(TypedEventsTest, ASubscriptionStopsWithTheTypedErrorOfAnEventThatDoesNotDecode) {
  const auto registry = wallet_registry();
  auto store = annals::make_in_memory_event_store();
  store->append(annals::StreamId("wallet-2"), annals::ExpectedVersion::any(),
                {wallet::raw("WalletCredited", 3, {{"amount_cents", "ten"}})});
  EventHandlers<> handlers(registry);
  handlers.on<WalletCredited>([](const WalletCredited&) {});
  auto subscription = annals::subscribe_typed(*store, std::move(handlers));
  static_cast<void>(subscription->wait_for(store->head_position(), std::chrono::seconds(10)));
  subscription->stop();
  ASSERT_NE(subscription->stop_reason(), nullptr);
  try {
    std::rethrow_exception(subscription->stop_reason());
  } catch (const annals::CorruptionError& e) {
    EXPECT_THAT(e.what(), HasSubstr("wallet-2"));
  }
}

TEST(TypedEventsTest, TypedReadsWithoutHandlersAreRefused) {
  auto store = annals::make_in_memory_event_store();
  const EventHandlers<> none;
  EXPECT_THROW(static_cast<void>(annals::read_all_typed(*store, none)),
               annals::InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(annals::subscribe_typed(*store, EventHandlers<>())),
               annals::InvalidArgumentError);
}

}  // namespace
