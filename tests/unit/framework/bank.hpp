// A small bank account aggregate in the decider shape (STYLE 2.5), used by the framework's
// tests and quoted by docs/aggregates.md (the blocks between docs:begin and docs:end are copied
// there verbatim).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"

namespace bank {

// docs:begin bank-events
// Events: plain structs, past tense, a stable stored name and a schema version.
struct AccountOpened {
  static constexpr std::string_view kTypeName = "AccountOpened";
  static constexpr int kSchemaVersion = 1;
  std::string owner;
  friend bool operator==(const AccountOpened&, const AccountOpened&) = default;
};

struct MoneyDeposited {
  static constexpr std::string_view kTypeName = "MoneyDeposited";
  static constexpr int kSchemaVersion = 1;
  std::int64_t amount = 0;  // cents
  friend bool operator==(const MoneyDeposited&, const MoneyDeposited&) = default;
};

struct MoneyWithdrawn {
  static constexpr std::string_view kTypeName = "MoneyWithdrawn";
  static constexpr int kSchemaVersion = 1;
  std::int64_t amount = 0;  // cents
  friend bool operator==(const MoneyWithdrawn&, const MoneyWithdrawn&) = default;
};

struct AccountClosed {
  static constexpr std::string_view kTypeName = "AccountClosed";
  static constexpr int kSchemaVersion = 1;
  std::string reason;
  friend bool operator==(const AccountClosed&, const AccountClosed&) = default;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, owner)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyWithdrawn, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountClosed, reason)
// docs:end

// docs:begin bank-commands
// Commands: imperative, carrying every fact decide needs (no clocks or lookups inside).
struct OpenAccount {
  std::string account_id;
  std::string owner;
};
struct Deposit {
  std::string account_id;
  std::int64_t amount = 0;
};
struct Withdraw {
  std::string account_id;
  std::int64_t amount = 0;
};
struct CloseAccount {
  std::string account_id;
  std::string reason;
};

// Domain errors: typed, with the facts a caller needs.
class InsufficientFunds : public annals::DomainError {
 public:
  InsufficientFunds(std::int64_t balance, std::int64_t requested)
      : DomainError("insufficient funds: balance " + std::to_string(balance) + ", requested " +
                    std::to_string(requested)),
        balance_(balance),
        requested_(requested) {}
  std::int64_t balance() const noexcept { return balance_; }
  std::int64_t requested() const noexcept { return requested_; }

 private:
  std::int64_t balance_;
  std::int64_t requested_;
};

class AccountNotOpen : public annals::DomainError {
 public:
  AccountNotOpen() : DomainError("the account is not open") {}
};

class InvalidAmount : public annals::DomainError {
 public:
  explicit InvalidAmount(std::int64_t amount)
      : DomainError("invalid amount " + std::to_string(amount) + ": must be positive") {}
};
// docs:end

// docs:begin bank-decider
// The decider: state, one evolve per event, one decide per command. No base class.
struct Account {
  struct State {
    bool open = false;
    bool closed = false;
    std::string owner;
    std::int64_t balance = 0;
    friend bool operator==(const State&, const State&) = default;
  };
  using Event = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn, AccountClosed>;
  static constexpr std::string_view kCategory = "account";  // streams "account-<id>"

  static State evolve(State s, const AccountOpened& e) {
    s.open = true;
    s.owner = e.owner;
    return s;
  }
  static State evolve(State s, const MoneyDeposited& e) {
    s.balance += e.amount;
    return s;
  }
  static State evolve(State s, const MoneyWithdrawn& e) {
    s.balance -= e.amount;
    return s;
  }
  static State evolve(State s, const AccountClosed&) {
    s.closed = true;
    return s;
  }

  // Opening an open account is a no-op: an empty decision writes nothing.
  static std::vector<Event> decide(const State& s, const OpenAccount& c) {
    if (s.open) return {};
    return {AccountOpened{c.owner}};
  }
  static MoneyDeposited decide(const State& s, const Deposit& c) {
    require_open(s);
    if (c.amount <= 0) throw InvalidAmount(c.amount);
    return MoneyDeposited{c.amount};
  }
  static MoneyWithdrawn decide(const State& s, const Withdraw& c) {
    require_open(s);
    if (c.amount <= 0) throw InvalidAmount(c.amount);
    if (c.amount > s.balance) throw InsufficientFunds(s.balance, c.amount);
    return MoneyWithdrawn{c.amount};
  }
  // Closing pays out the balance first: one command, two events.
  static std::vector<Event> decide(const State& s, const CloseAccount& c) {
    if (s.closed) return {};
    require_open(s);
    std::vector<Event> events;
    if (s.balance > 0) events.emplace_back(MoneyWithdrawn{s.balance});
    events.emplace_back(AccountClosed{c.reason});
    return events;
  }

 private:
  static void require_open(const State& s) {
    if (!s.open || s.closed) throw AccountNotOpen();
  }
};

// Snapshots store the state as JSON.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account::State, open, closed, owner, balance)
// docs:end

}  // namespace bank
