// The quickstart's domain: one aggregate, a wallet, written as a decider (docs/aggregates.md).
// Plain structs and pure functions: nothing here touches a store, a clock or a database.
// docs:begin quickstart-domain
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include <annals/eventstore/error.hpp>  // annals::DomainError

namespace wallet {

// The event: a fact, in the past tense, with a stable stored name and a schema version.
struct Deposited {
  static constexpr std::string_view kTypeName = "Deposited";
  static constexpr int kSchemaVersion = 1;
  std::int64_t amount = 0;  // cents
  friend bool operator==(const Deposited&, const Deposited&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount)

// The command: a request, in the imperative, carrying everything the decision needs.
struct Deposit {
  std::string wallet_id;
  std::int64_t amount = 0;  // cents
};

// Refusals are typed domain errors: nothing is written, and the bus never retries them.
class InvalidAmount : public annals::DomainError {
 public:
  explicit InvalidAmount(std::int64_t amount)
      : DomainError("invalid amount " + std::to_string(amount) + ": must be positive") {}
};

class LimitExceeded : public annals::DomainError {
 public:
  LimitExceeded(std::int64_t balance, std::int64_t amount)
      : DomainError("a wallet holds at most 1,000,000 cents: balance " + std::to_string(balance) +
                    ", deposit " + std::to_string(amount)),
        balance_(balance) {}
  std::int64_t balance() const noexcept { return balance_; }

 private:
  std::int64_t balance_;
};

// The aggregate: a state, one evolve per event, one decide per command. No base class.
struct Wallet {
  static constexpr std::string_view kCategory = "wallet";  // streams "wallet-<id>"
  static constexpr std::int64_t kLimit = 1'000'000;        // cents

  struct State {
    std::int64_t balance = 0;
  };
  using Event = std::variant<Deposited>;

  static State evolve(State state, const Deposited& e) {
    state.balance += e.amount;
    return state;
  }

  static Deposited decide(const State& state, const Deposit& c) {
    if (c.amount <= 0) throw InvalidAmount(c.amount);
    if (c.amount > kLimit - state.balance) throw LimitExceeded(state.balance, c.amount);
    return Deposited{c.amount};
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Wallet::State, balance)  // snapshots store the state as JSON

}  // namespace wallet
// docs:end
