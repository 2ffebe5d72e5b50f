// Unit tests of the event registry and codec: names both ways, encoding, upcaster chains and
// their validation, and the typed errors of reading.
#include "annals/framework/event_registry.hpp"

#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/framework/errors.hpp"
#include "annals/testkit/printers.hpp"
#include "bank.hpp"
#include "wallet.hpp"

namespace {

using annals::EventRegistry;
using annals::UpcastEvent;

annals::RecordedEvent recorded(std::string type, std::int32_t schema, nlohmann::json data,
                               const std::string& stream = "wallet-7",
                               annals::StreamVersion version = 3) {
  return annals::RecordedEvent{
      .stream_id = annals::StreamId(stream),
      .version = version,
      .position = {},
      .id = annals::EventId::generate(),
      .type = std::move(type),
      .schema_version = schema,
      .data = std::move(data),
      .metadata = {{"traceparent", "t"}},
      .recorded_at = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000))};
}

// An event type that claims a name another type already has.
struct Impostor {
  static constexpr std::string_view kTypeName = "MoneyDeposited";
  static constexpr int kSchemaVersion = 1;
  int x = 0;
  friend bool operator==(const Impostor&, const Impostor&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Impostor, x)

static_assert(annals::EventType<bank::MoneyDeposited>);
static_assert(!annals::EventType<int>);

std::string validation_message(const EventRegistry& registry) {
  try {
    registry.validate();
  } catch (const annals::InvalidArgumentError& e) {
    return e.what();
  }
  return "";
}

TEST(EventRegistryTest, MapsTypesToNamesAndVersionsBothWays) {
  EventRegistry registry;
  registry.register_events<bank::Account>();
  wallet::register_wallet(registry);
  EXPECT_TRUE(registry.contains<bank::MoneyDeposited>());
  EXPECT_FALSE(registry.contains<Impostor>());
  const auto info = registry.find("WalletCredited");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->name, "WalletCredited");
  EXPECT_EQ(info->schema_version, 3);
  EXPECT_EQ(info->first_schema_version, 3);
  EXPECT_EQ(registry.find("WalletCreated")->first_schema_version, 1);
  EXPECT_EQ(registry.find("FundsAdded"), std::nullopt);  // an old name: upcasters only
}

TEST(EventRegistryTest, RegisteringTheSameTypeAgainIsANoOp) {
  EventRegistry registry;
  registry.register_event<bank::MoneyDeposited>();
  registry.register_events<bank::Account>();
  EXPECT_TRUE(registry.contains<bank::MoneyDeposited>());
}

TEST(EventRegistryTest, ANameTakenByAnotherTypeIsRefused) {
  EventRegistry registry;
  registry.register_event<bank::MoneyDeposited>();
  EXPECT_THROW(registry.register_event<Impostor>(), annals::InvalidArgumentError);
}

TEST(EventRegistryTest, EncodesTheNameTheVersionAndTheJson) {
  EventRegistry registry;
  registry.register_events<bank::Account>();
  const auto event = registry.encode(bank::MoneyWithdrawn{42}, {{"actor", "a"}});
  EXPECT_EQ(event.type, "MoneyWithdrawn");
  EXPECT_EQ(event.schema_version, 1);
  EXPECT_EQ(event.data, nlohmann::json({{"amount", 42}}));
  EXPECT_EQ(event.metadata, nlohmann::json({{"actor", "a"}}));
  EXPECT_EQ(event.id, std::nullopt);
  const bank::Account::Event variant = bank::AccountOpened{"ada"};
  EXPECT_EQ(registry.encode(variant).type, "AccountOpened");
}

TEST(EventRegistryTest, EncodingAnUnregisteredTypeIsRefused) {
  EventRegistry registry;
  EXPECT_THROW((void)registry.encode(bank::MoneyWithdrawn{1}), annals::InvalidArgumentError);
}

TEST(EventRegistryTest, DecodesCurrentEventsIntoTheVariant) {
  EventRegistry registry;
  registry.register_events<bank::Account>();
  using V = bank::Account::Event;
  EXPECT_EQ(registry.decode<V>(recorded("MoneyDeposited", 1, {{"amount", 5}})),
            std::vector<V>{bank::MoneyDeposited{5}});
}

TEST(EventRegistryTest, UpcastsFieldChangesRenamesAndSplitsInOrder) {
  EventRegistry registry;
  wallet::register_wallet(registry);
  EXPECT_EQ(registry.upcast_event(recorded("FundsAdded", 1, {{"amount", 2}})),
            (std::vector<UpcastEvent>{
                {"WalletCredited", 3, {{"amount_cents", 200}, {"currency", "EUR"}}}}));
  EXPECT_EQ(
      registry.upcast_event(recorded("WalletOpenedWithFunds", 1, {{"owner", "o"}, {"initial", 1}})),
      (std::vector<UpcastEvent>{
          {"WalletCreated", 3, {{"owner_name", "o"}, {"currency", "EUR"}}},
          {"WalletCredited", 3, {{"amount_cents", 100}, {"currency", "EUR"}}}}));
  // Already current: unchanged.
  EXPECT_EQ(registry.upcast_event(recorded("WalletCredited", 3, {{"amount_cents", 1}})),
            (std::vector<UpcastEvent>{{"WalletCredited", 3, {{"amount_cents", 1}}}}));
}

TEST(EventRegistryTest, UpcastersMayReadTheStoredEvent) {
  EventRegistry registry;
  registry.register_events<wallet::Wallet>();
  registry.upcast("WalletCreated", 1, [](nlohmann::json data, const annals::RecordedEvent& origin) {
    data["currency"] = origin.metadata.at("traceparent");
    return data;
  });
  registry.upcast("WalletCreated", 2, [](nlohmann::json data) {
    data["owner_name"] = data.at("owner");
    return data;
  });
  registry.rename("FundsAdded", 2, "WalletCredited");
  registry.validate();
  EXPECT_EQ(registry.upcast_event(recorded("WalletCreated", 1, {{"owner", "x"}}))[0].data,
            nlohmann::json({{"owner", "x"}, {"owner_name", "x"}, {"currency", "t"}}));
  EXPECT_EQ(registry.upcast_event(recorded("FundsAdded", 2, {{"amount_cents", 9}}))[0],
            (UpcastEvent{"WalletCredited", 3, {{"amount_cents", 9}}}));
}

TEST(EventRegistryTest, ValidateAcceptsCompleteChains) {
  EventRegistry registry;
  wallet::register_wallet(registry);  // validates
  EXPECT_NO_THROW(registry.validate());
}

TEST(EventRegistryTest, AGapInAChainIsReportedAtValidationNotOnRead) {
  EventRegistry registry;
  registry.register_events<wallet::Wallet>();
  registry.upcast("WalletCreated", 1, [](nlohmann::json d) { return d; });
  // Forgotten: WalletCreated v2 -> v3.
  registry.rename("FundsAdded", 2, "WalletCredited");
  const auto message = validation_message(registry);
  EXPECT_NE(message.find("\"WalletCreated\" is at schema version 3 but has no upcaster from "
                         "version 2"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("the chain from \"WalletCreated\" v1 stops at \"WalletCreated\" v2"),
            std::string::npos)
      << message;
}

TEST(EventRegistryTest, AChainEndingAtAnUnregisteredTypeIsReported) {
  EventRegistry registry;
  registry.register_events<wallet::Wallet>();
  registry.upcast("WalletCreated", 1, [](nlohmann::json d) { return d; });
  registry.upcast("WalletCreated", 2, [](nlohmann::json d) { return d; });
  registry.rename("FundsAdded", 2, "WalletCreditted");  // a typo
  const auto message = validation_message(registry);
  EXPECT_NE(message.find("\"WalletCreditted\" is not a registered event type"), std::string::npos)
      << message;
}

TEST(EventRegistryTest, AStepAtOrBeyondTheCurrentVersionIsReported) {
  EventRegistry registry;
  registry.register_events<bank::Account>();
  registry.upcast("MoneyDeposited", 1, [](nlohmann::json d) { return d; });
  const auto message = validation_message(registry);
  EXPECT_NE(message.find("upcaster from \"MoneyDeposited\" v1, but \"MoneyDeposited\" is at "
                         "schema version 1 already"),
            std::string::npos)
      << message;
}

TEST(EventRegistryTest, BadStepsAreRefusedAtRegistration) {
  EventRegistry registry;
  registry.upcast("A", 1, [](nlohmann::json d) { return d; });
  EXPECT_THROW(registry.upcast("A", 1, [](nlohmann::json d) { return d; }),
               annals::InvalidArgumentError);
  EXPECT_THROW(registry.upcast("A", 0, [](nlohmann::json d) { return d; }),
               annals::InvalidArgumentError);
  EXPECT_THROW(registry.upcast("", 1, [](nlohmann::json d) { return d; }),
               annals::InvalidArgumentError);
  EXPECT_THROW(registry.rename("B", 1, ""), annals::InvalidArgumentError);
  EXPECT_THROW(
      registry.split("C", 1, {}, [](nlohmann::json) { return std::vector<annals::SplitPart>{}; }),
      annals::InvalidArgumentError);
}

TEST(EventRegistryTest, UnknownTypeOnReadNamesTypeStreamAndVersion) {
  EventRegistry registry;
  wallet::register_wallet(registry);
  try {
    (void)registry.upcast_event(recorded("WalletExploded", 2, {}, "wallet-9", 11));
    FAIL() << "expected UnknownEventTypeError";
  } catch (const annals::UnknownEventTypeError& e) {
    EXPECT_EQ(e.type(), "WalletExploded");
    EXPECT_EQ(e.schema_version(), 2);
    EXPECT_EQ(e.stream(), "wallet-9");
    EXPECT_EQ(e.version(), 11);
    EXPECT_EQ(e.code(), annals::ErrorCode::kNotFound);
    EXPECT_FALSE(e.retryable());
  }
}

TEST(EventRegistryTest, AnEventNewerThanTheCodeIsAnUnknownEventType) {
  EventRegistry registry;
  wallet::register_wallet(registry);
  try {
    (void)registry.decode<wallet::Wallet::Event>(recorded("WalletCredited", 4, {}));
    FAIL() << "expected UnknownEventTypeError";
  } catch (const annals::UnknownEventTypeError& e) {
    EXPECT_EQ(e.schema_version(), 4);
    EXPECT_NE(std::string(e.what()).find("newer release"), std::string::npos) << e.what();
  }
}

TEST(EventRegistryTest, AnEventOutsideTheRequestedVariantIsAnUnknownEventType) {
  EventRegistry registry;
  registry.register_events<bank::Account>();
  wallet::register_wallet(registry);
  EXPECT_THROW((void)registry.decode<bank::Account::Event>(recorded("WalletCreated", 3, {})),
               annals::UnknownEventTypeError);
}

TEST(EventRegistryTest, ASplitReturningAnUndeclaredTypeIsRefused) {
  EventRegistry registry;
  registry.register_events<wallet::Wallet>();
  registry.split("Old", 2, {"WalletCreated"}, [](nlohmann::json) {
    return std::vector<annals::SplitPart>{{"WalletCredited", {{"amount_cents", 1}}}};
  });
  EXPECT_THROW((void)registry.upcast_event(recorded("Old", 2, {})), annals::InvalidArgumentError);
}

TEST(EventRegistryTest, AFailingUpcasterIsACorruptionErrorNamingTheEvent) {
  EventRegistry registry;
  registry.register_events<wallet::Wallet>();
  registry.upcast("WalletCreated", 2,
                  [](nlohmann::json) -> nlohmann::json { throw std::runtime_error("boom"); });
  try {
    (void)registry.upcast_event(recorded("WalletCreated", 2, {}, "wallet-1", 5));
    FAIL() << "expected CorruptionError";
  } catch (const annals::CorruptionError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("upcaster from \"WalletCreated\" v2 failed on the event at version 5 "
                           "of stream \"wallet-1\""),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("boom"), std::string::npos) << message;
  }
}

}  // namespace
