// Unit tests of the command bus's wiring and of the repository's set-up checks (no server).
// Behaviour against real stores is in framework_suite.hpp.
#include "annals/framework/command_bus.hpp"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/repository.hpp"
#include "annals/testkit/printers.hpp"
#include "bank.hpp"
#include "wallet.hpp"

namespace {

using annals::CommandBus;
using annals::EventRegistry;
using annals::Repository;
using annals::SnapshotPolicy;
using bank::Account;

// A decider whose commands name their aggregate by an integer or by a typed id.
struct TicketId {
  std::int64_t value = 0;
  std::string to_string() const { return "T" + std::to_string(value); }
};

struct TicketOpened {
  static constexpr std::string_view kTypeName = "TicketOpened";
  static constexpr int kSchemaVersion = 1;
  std::string title;
  friend bool operator==(const TicketOpened&, const TicketOpened&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TicketOpened, title)

struct OpenTicket {
  std::int64_t number = 0;
  std::string title;
};
struct OpenTypedTicket {
  TicketId id;
  std::string title;
};

struct Ticket {
  struct State {  // no JSON conversions: snapshots are not possible
    std::string title;
  };
  using Event = std::variant<TicketOpened>;
  static constexpr std::string_view kCategory = "ticket";
  static State evolve(State s, const TicketOpened& e) {
    s.title = e.title;
    return s;
  }
  static TicketOpened decide(const State&, const OpenTicket& c) { return {c.title}; }
  static TicketOpened decide(const State&, const OpenTypedTicket& c) { return {c.title}; }
};

class CommandBusTest : public ::testing::Test {
 protected:
  CommandBusTest() { registry_.register_events<Account>(); }
  std::unique_ptr<annals::EventStore> store_ = annals::make_in_memory_event_store();
  EventRegistry registry_;
};

TEST_F(CommandBusTest, ACommandWithoutAHandlerIsNotFound) {
  CommandBus bus(*store_, registry_);
  bus.handle<Account>(&bank::OpenAccount::account_id);
  try {
    bus.send(bank::Deposit{"1", 5});
    FAIL() << "expected NotFoundError";
  } catch (const annals::NotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find("bank::Deposit"), std::string::npos) << e.what();
  }
}

TEST_F(CommandBusTest, ACommandTypeHasOneHandler) {
  CommandBus bus(*store_, registry_);
  bus.handle<Account>(&bank::OpenAccount::account_id);
  EXPECT_THROW(bus.handle<Account>(&bank::OpenAccount::account_id), annals::InvalidArgumentError);
}

TEST_F(CommandBusTest, UnregisteredEventsAreRefusedWhenWiring) {
  CommandBus bus(*store_, registry_);
  try {
    bus.handle<Ticket>(&OpenTicket::number);
    FAIL() << "expected InvalidArgumentError";
  } catch (const annals::InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("\"TicketOpened\" is not registered"), std::string::npos)
        << e.what();
  }
}

TEST_F(CommandBusTest, AnInvalidUpcasterChainIsRefusedWhenWiring) {
  registry_.register_events<wallet::Wallet>();  // without its upcasters
  CommandBus bus(*store_, registry_);
  EXPECT_THROW(bus.handle<wallet::Wallet>(&wallet::Credit::wallet_id),
               annals::InvalidArgumentError);
}

TEST_F(CommandBusTest, AggregateIdsMayBeIntegersOrHaveToString) {
  registry_.register_events<Ticket>();
  CommandBus bus(*store_, registry_);
  bus.handle<Ticket>(&OpenTicket::number);
  bus.handle<Ticket>(&OpenTypedTicket::id);
  EXPECT_EQ(bus.send(OpenTicket{17, "a"}).stream_id, annals::StreamId("ticket-17"));
  EXPECT_EQ(bus.send(OpenTypedTicket{{18}, "b"}).stream_id, annals::StreamId("ticket-T18"));
}

TEST_F(CommandBusTest, AnEmptyAggregateIdIsRefused) {
  CommandBus bus(*store_, registry_);
  bus.handle<Account>(&bank::OpenAccount::account_id);
  EXPECT_THROW(bus.send(bank::OpenAccount{"", "ada"}), annals::InvalidArgumentError);
  EXPECT_THROW(bus.send(bank::OpenAccount{"bad\nid", "ada"}), annals::InvalidArgumentError);
}

TEST_F(CommandBusTest, ASnapshotPolicyNeedsAJsonState) {
  registry_.register_events<Ticket>();
  auto snapshots = annals::make_in_memory_snapshot_store();
  EXPECT_THROW(Repository<Ticket>(
                   *store_, registry_,
                   {.snapshots = snapshots.get(), .snapshot_policy = SnapshotPolicy::every(10)}),
               annals::InvalidArgumentError);
  // Without a policy it is fine (nothing is ever written).
  EXPECT_NO_THROW(Repository<Ticket>(*store_, registry_, {.snapshots = snapshots.get()}));
}

TEST(SnapshotPolicyTest, EveryCountsEventsSinceTheLastSnapshot) {
  const annals::StreamId stream("account-1");
  const auto every = SnapshotPolicy::every(10);
  EXPECT_FALSE(every.should_snapshot({stream, 19, 9, {}}));
  EXPECT_TRUE(every.should_snapshot({stream, 20, 10, {}}));
  EXPECT_TRUE(SnapshotPolicy().is_never());
  EXPECT_FALSE(SnapshotPolicy::never().should_snapshot({stream, 1000, 1000, {}}));
  EXPECT_THROW((void)SnapshotPolicy::every(0), annals::InvalidArgumentError);
  EXPECT_THROW((void)SnapshotPolicy::when({}), annals::InvalidArgumentError);
}

TEST(RecentCommandsTest, GroupsConsecutiveEventsOfOneCommand) {
  using annals::EventId;
  annals::detail::RecentCommands recent;
  const auto a = annals::derive_event_id("a", 0);
  const auto b = annals::derive_event_id("b", 0);
  recent.add_newer(1, a, 1, annals::Position(10, 1));
  recent.add_newer(1, annals::derive_event_id("a", 1), 2, annals::Position(10, 2));
  recent.add_newer(std::nullopt, EventId::generate(), 3, annals::Position(11, 3));  // no id
  recent.add_newer(2, b, 4, annals::Position(12, 4));
  recent.add_newer(1, annals::derive_event_id("a", 9), 5, annals::Position(13, 5));  // not 2's
  ASSERT_NE(recent.find(a), nullptr);
  EXPECT_EQ(recent.find(a)->first_version, 1);
  EXPECT_EQ(recent.find(a)->last_version, 2);
  EXPECT_EQ(recent.find(a)->position, annals::Position(10, 2));
  ASSERT_NE(recent.find(b), nullptr);
  EXPECT_EQ(recent.find(b)->last_version, 4);
  EXPECT_EQ(recent.find(annals::derive_event_id("a", 1)), nullptr);
  EXPECT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent.known_after(), 0);
}

TEST(RecentCommandsTest, ForgetsTheOldestAndSaysFromWhereItKnowsEveryCommand) {
  annals::detail::RecentCommands recent;
  const auto capacity = static_cast<annals::StreamVersion>(recent.kCapacity);
  for (annals::StreamVersion v = 1; v <= capacity + 2; ++v) {
    recent.add_newer(static_cast<std::uint64_t>(v), annals::derive_event_id(std::to_string(v), 0),
                     v, annals::Position(1, v));
  }
  EXPECT_TRUE(recent.full());
  EXPECT_EQ(recent.known_after(), 2);
  EXPECT_EQ(recent.find(annals::derive_event_id("2", 0)), nullptr);
  EXPECT_NE(recent.find(annals::derive_event_id("3", 0)), nullptr);
}

TEST(RecentCommandsTest, ReadingBackExtendsTheOldestCommandAndStopsWhenFull) {
  annals::detail::RecentCommands recent;
  recent.start_after(10);  // loaded from a snapshot at 10
  recent.add_newer(7, annals::derive_event_id("c", 0), 11, annals::Position(1, 11));
  EXPECT_EQ(recent.known_after(), 10);
  // Backward from 10: command 5 has events 9 and 10, command 4 event 8.
  EXPECT_TRUE(recent.add_older(5, annals::derive_event_id("e", 1), 10, annals::Position(1, 10)));
  EXPECT_TRUE(recent.add_older(5, annals::derive_event_id("e", 0), 9, annals::Position(1, 9)));
  EXPECT_TRUE(recent.add_older(4, annals::derive_event_id("d", 0), 8, annals::Position(1, 8)));
  EXPECT_EQ(recent.known_after(), 7);
  const auto* e = recent.find(annals::derive_event_id("e", 0));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->first_version, 9);
  EXPECT_EQ(e->last_version, 10);
  EXPECT_EQ(e->position, annals::Position(1, 10));
  for (annals::StreamVersion v = 7; recent.size() < recent.kCapacity; --v) {
    EXPECT_TRUE(recent.add_older(static_cast<std::uint64_t>(100 + v), annals::EventId::generate(),
                                 v, annals::Position(1, v)));
  }
  EXPECT_FALSE(recent.add_older(99, annals::EventId::generate(), 1, annals::Position(1, 1)));
  EXPECT_NE(recent.find(annals::derive_event_id("c", 0)), nullptr);
}

TEST(AggregateCacheTest, KeepsTheNewestAndEvictsTheLeastRecentlyUsed) {
  using A = annals::Aggregate<Account>;
  annals::detail::AggregateCache<A> cache(2, /*shards=*/1);
  const A a(annals::StreamId("account-a"));
  const A b(annals::StreamId("account-b"));
  const A c(annals::StreamId("account-c"));
  cache.put(a);
  cache.put(b);
  EXPECT_TRUE(cache.get(a.stream_id()).has_value());  // a is now the most recent
  cache.put(c);                                       // evicts b
  EXPECT_FALSE(cache.get(b.stream_id()).has_value());
  EXPECT_TRUE(cache.get(a.stream_id()).has_value());
  EXPECT_TRUE(cache.get(c.stream_id()).has_value());
  cache.erase(a.stream_id());
  EXPECT_FALSE(cache.get(a.stream_id()).has_value());

  annals::detail::AggregateCache<A> off(0);
  off.put(a);
  EXPECT_FALSE(off.get(a.stream_id()).has_value());
}

TEST(AggregateCacheTest, ShardsHoldTheirShareOfTheCapacity) {
  using A = annals::Aggregate<Account>;
  annals::detail::AggregateCache<A> cache(1000);  // 16 shards of 62 or 63
  for (int i = 0; i < 100; ++i) cache.put(A(annals::StreamId("account-" + std::to_string(i))));
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(cache.get(annals::StreamId("account-" + std::to_string(i))).has_value()) << i;
  }
  annals::detail::AggregateCache<A> tiny(3);  // fewer aggregates than shards: 3 shards of 1
  for (int i = 0; i < 50; ++i) tiny.put(A(annals::StreamId("account-" + std::to_string(i))));
  int cached = 0;
  for (int i = 0; i < 50; ++i)
    cached += tiny.get(annals::StreamId("account-" + std::to_string(i))) ? 1 : 0;
  EXPECT_LE(cached, 3);
  EXPECT_GE(cached, 1);
}

TEST(AggregateCacheTest, AnOlderVersionNeverReplacesANewerOne) {
  auto store = annals::make_in_memory_event_store();
  EventRegistry registry;
  registry.register_events<Account>();
  Repository<Account> accounts(*store, registry);
  auto older = accounts.load("x");
  auto newer = older;
  newer.execute(bank::OpenAccount{"x", "ada"});
  accounts.save(newer);
  annals::detail::AggregateCache<annals::Aggregate<Account>> cache(4);
  cache.put(newer);
  cache.put(older);
  EXPECT_EQ(cache.get(newer.stream_id())->version(), 1);
}

}  // namespace
