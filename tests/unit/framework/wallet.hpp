// A wallet aggregate whose events evolved through three schema versions, for the upcaster
// tests (ARCHITECTURE decision 9). The C++ types are at version 3; older versions exist only as
// stored JSON, written raw by the tests:
//
//   v1  WalletCreated {owner}            FundsAdded {amount: whole euros}
//       WalletOpenedWithFunds {owner, initial}   (one event, later split in two)
//   v2  WalletCreated {owner, currency}  FundsAdded {amount_cents}
//   v3  WalletCreated {owner_name, currency}     WalletCredited {amount_cents, currency}
//       (FundsAdded was renamed WalletCredited)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/types.hpp"
#include "annals/framework/event_registry.hpp"

namespace wallet {

struct WalletCreated {
  static constexpr std::string_view kTypeName = "WalletCreated";
  static constexpr int kSchemaVersion = 3;
  std::string owner_name;
  std::string currency;
  friend bool operator==(const WalletCreated&, const WalletCreated&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(WalletCreated, owner_name, currency)

// docs:begin renamed-event
struct WalletCredited {
  static constexpr std::string_view kTypeName = "WalletCredited";
  static constexpr int kSchemaVersion = 3;
  // Stored under this name only since version 3; older ones are "FundsAdded" (renamed).
  static constexpr int kFirstSchemaVersion = 3;
  std::int64_t amount_cents = 0;
  std::string currency;
  friend bool operator==(const WalletCredited&, const WalletCredited&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(WalletCredited, amount_cents, currency)
// docs:end

struct Credit {
  std::string wallet_id;
  std::int64_t amount_cents = 0;
};

struct Wallet {
  struct State {
    std::string owner;
    std::string currency;
    std::int64_t balance_cents = 0;
    int credits = 0;
    friend bool operator==(const State&, const State&) = default;
  };
  using Event = std::variant<WalletCreated, WalletCredited>;
  static constexpr std::string_view kCategory = "wallet";

  static State evolve(State s, const WalletCreated& e) {
    s.owner = e.owner_name;
    s.currency = e.currency;
    return s;
  }
  static State evolve(State s, const WalletCredited& e) {
    s.balance_cents += e.amount_cents;
    ++s.credits;
    return s;
  }
  static WalletCredited decide(const State& s, const Credit& c) {
    return WalletCredited{c.amount_cents, s.currency};
  }
};

/// Registers the wallet's events and the upcasters from every stored version.
inline void register_wallet(annals::EventRegistry& registry) {
  // docs:begin upcasters
  registry.register_events<Wallet>();

  // WalletCreated v1 -> v2: a new field, with the value every old wallet had.
  registry.upcast("WalletCreated", 1, [](nlohmann::json data) {
    data["currency"] = "EUR";
    return data;
  });
  // WalletCreated v2 -> v3: a field renamed.
  registry.upcast("WalletCreated", 2, [](nlohmann::json data) {
    auto owner = data.at("owner");
    data.erase("owner");
    data["owner_name"] = std::move(owner);
    return data;
  });
  // FundsAdded v1 -> v2: whole euros became cents.
  registry.upcast("FundsAdded", 1, [](const nlohmann::json& data) {
    return nlohmann::json{{"amount_cents", data.at("amount").get<std::int64_t>() * 100}};
  });
  // FundsAdded v2 -> WalletCredited v3: the type renamed, its currency made explicit.
  registry.rename("FundsAdded", 2, "WalletCredited", [](nlohmann::json data) {
    data["currency"] = "EUR";
    return data;
  });
  // WalletOpenedWithFunds v1 -> two v2 events, which then follow their own chains to v3.
  registry.split(
      "WalletOpenedWithFunds", 1, {"WalletCreated", "FundsAdded"}, [](const nlohmann::json& data) {
        return std::vector<annals::SplitPart>{
            {"WalletCreated", {{"owner", data.at("owner")}, {"currency", "EUR"}}},
            {"FundsAdded", {{"amount_cents", data.at("initial").get<std::int64_t>() * 100}}}};
      });
  registry.validate();  // a missing step throws here, at start-up
  // docs:end
}

/// A stored event of an old schema, as an old release wrote it.
inline annals::NewEvent raw(std::string type, std::int32_t schema_version, nlohmann::json data) {
  return annals::NewEvent{.id = std::nullopt,
                          .type = std::move(type),
                          .schema_version = schema_version,
                          .data = std::move(data),
                          .metadata = {{"traceparent", "00-old-release-01"}}};
}

}  // namespace wallet
