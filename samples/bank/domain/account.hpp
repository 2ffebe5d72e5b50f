// The bank sample's domain: one aggregate, Account, in the decider shape (STYLE 2.5).
//
// An account is opened for an owner, takes deposits and withdrawals in integer cents, never
// goes below zero, and can be closed only when its balance is zero. Every refusal is a typed
// DomainError carrying the facts a caller needs (the HTTP layer maps each type to a status).
//
//   annals::EventRegistry registry;
//   bank::register_events(registry);
//   bus.handle<bank::Account>(&bank::Deposit::account_id);
//   bus.send(bank::Deposit{"a1", 100}, {.command_id = request_id});
//
// This target links annals::framework only: no HTTP, no SQL, no clocks (time comes from the
// store's recorded_at on the read side). Thread safety: pure functions and values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/framework/event_registry.hpp"

namespace bank {

// --- Limits -------------------------------------------------------------------------------

/// Largest amount of one deposit or withdrawal, in cents (10 billion in currency units).
inline constexpr std::int64_t kMaxAmount = 1'000'000'000'000;
/// Largest balance an account may reach, in cents.
inline constexpr std::int64_t kMaxBalance = 1'000'000'000'000'000;
/// Longest owner name, in bytes of UTF-8.
inline constexpr std::size_t kMaxOwnerBytes = 200;
/// Longest account id, in bytes.
inline constexpr std::size_t kMaxAccountIdBytes = 64;

/// True for 1 to kMaxAccountIdBytes characters out of [A-Za-z0-9._~-] (URL-safe, so an id is
/// its own path segment; a UUID qualifies).
[[nodiscard]] bool is_valid_account_id(std::string_view id) noexcept;

// --- Events -------------------------------------------------------------------------------

// docs:begin bank-sample-events
struct AccountOpened {
  static constexpr std::string_view kTypeName = "bank.AccountOpened";
  static constexpr int kSchemaVersion = 1;
  std::string owner;
  friend bool operator==(const AccountOpened&, const AccountOpened&) = default;
};

struct MoneyDeposited {
  static constexpr std::string_view kTypeName = "bank.MoneyDeposited";
  static constexpr int kSchemaVersion = 1;
  std::int64_t amount = 0;  // cents, > 0
  friend bool operator==(const MoneyDeposited&, const MoneyDeposited&) = default;
};

struct MoneyWithdrawn {
  static constexpr std::string_view kTypeName = "bank.MoneyWithdrawn";
  static constexpr int kSchemaVersion = 1;
  std::int64_t amount = 0;  // cents, > 0
  friend bool operator==(const MoneyWithdrawn&, const MoneyWithdrawn&) = default;
};

struct AccountClosed {
  static constexpr std::string_view kTypeName = "bank.AccountClosed";
  static constexpr int kSchemaVersion = 1;
  friend bool operator==(const AccountClosed&, const AccountClosed&) = default;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, owner)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyDeposited, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MoneyWithdrawn, amount)
// AccountClosed has no fields; its JSON is {} (the macro needs at least one member).
void to_json(nlohmann::json& j, const AccountClosed&);
void from_json(const nlohmann::json& j, AccountClosed&);
// docs:end

// --- Commands -----------------------------------------------------------------------------
// Each has a stable name and a JSON form, which makes it an annals::FingerprintedCommand: the
// bus stores its fingerprint with its events and refuses a command_id reused for a different
// command (another amount or account) instead of answering with the first one's result.

struct OpenAccount {
  static constexpr std::string_view kCommandName = "bank.OpenAccount";
  std::string account_id;
  std::string owner;
};
// docs:begin bank-sample-fingerprinted-command
struct Deposit {
  static constexpr std::string_view kCommandName = "bank.Deposit";  // stable, like kTypeName
  std::string account_id;
  std::int64_t amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposit, account_id, amount)
// docs:end
struct Withdraw {
  static constexpr std::string_view kCommandName = "bank.Withdraw";
  std::string account_id;
  std::int64_t amount = 0;
};
struct CloseAccount {
  static constexpr std::string_view kCommandName = "bank.CloseAccount";
  std::string account_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OpenAccount, account_id, owner)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Withdraw, account_id, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CloseAccount, account_id)

// --- Domain errors ------------------------------------------------------------------------

/// Opening an account that exists (open or closed).
class AccountAlreadyExists : public annals::DomainError {
 public:
  explicit AccountAlreadyExists(const std::string& account_id);
};

/// A command on an account that was never opened.
class AccountNotFound : public annals::DomainError {
 public:
  explicit AccountNotFound(const std::string& account_id);
};

/// A deposit, withdrawal or close on a closed account.
class AccountIsClosed : public annals::DomainError {
 public:
  explicit AccountIsClosed(const std::string& account_id);
};

/// An amount outside 1..kMaxAmount cents.
class InvalidAmount : public annals::DomainError {
 public:
  explicit InvalidAmount(std::int64_t amount);
  [[nodiscard]] std::int64_t amount() const noexcept { return amount_; }

 private:
  std::int64_t amount_;
};

/// An owner name that is empty, longer than kMaxOwnerBytes or has control characters.
class InvalidOwner : public annals::DomainError {
 public:
  explicit InvalidOwner(const std::string& why);
};

/// A withdrawal larger than the balance (no overdraft).
class InsufficientFunds : public annals::DomainError {
 public:
  InsufficientFunds(std::int64_t balance, std::int64_t requested);
  [[nodiscard]] std::int64_t balance() const noexcept { return balance_; }
  [[nodiscard]] std::int64_t requested() const noexcept { return requested_; }

 private:
  std::int64_t balance_;
  std::int64_t requested_;
};

/// A deposit that would take the balance above kMaxBalance.
class BalanceLimitExceeded : public annals::DomainError {
 public:
  BalanceLimitExceeded(std::int64_t balance, std::int64_t requested);
  [[nodiscard]] std::int64_t balance() const noexcept { return balance_; }
  [[nodiscard]] std::int64_t requested() const noexcept { return requested_; }

 private:
  std::int64_t balance_;
  std::int64_t requested_;
};

/// Closing an account whose balance is not zero.
class BalanceNotZero : public annals::DomainError {
 public:
  explicit BalanceNotZero(std::int64_t balance);
  [[nodiscard]] std::int64_t balance() const noexcept { return balance_; }

 private:
  std::int64_t balance_;
};

// --- The decider --------------------------------------------------------------------------

// docs:begin bank-sample-decider
struct Account {
  enum class Status { kNew, kOpen, kClosed };

  struct State {
    Status status = Status::kNew;
    std::string owner;
    std::int64_t balance = 0;  // cents
    friend bool operator==(const State&, const State&) = default;
  };
  using Event = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn, AccountClosed>;
  static constexpr std::string_view kCategory = "account";  // streams "account-<id>"

  static State evolve(State s, const AccountOpened& e);
  static State evolve(State s, const MoneyDeposited& e);
  static State evolve(State s, const MoneyWithdrawn& e);
  static State evolve(State s, const AccountClosed& e);

  static AccountOpened decide(const State& s, const OpenAccount& c);
  static MoneyDeposited decide(const State& s, const Deposit& c);
  static MoneyWithdrawn decide(const State& s, const Withdraw& c);
  static AccountClosed decide(const State& s, const CloseAccount& c);
};
// docs:end

/// "open" or "closed" ("new" for an account that does not exist yet).
[[nodiscard]] const char* to_string(Account::Status status) noexcept;

NLOHMANN_JSON_SERIALIZE_ENUM(Account::Status, {{Account::Status::kNew, "new"},
                                               {Account::Status::kOpen, "open"},
                                               {Account::Status::kClosed, "closed"}})
// Snapshots store the state as JSON.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account::State, status, owner, balance)

/// Registers every event of the bank (today: Account's) in `registry`, and annals.SubjectForgotten,
/// which the balances read model handles.
void register_events(annals::EventRegistry& registry);

/// Declares the bank's personal data (docs/personal-data.md): the `owner` of AccountOpened,
/// whose subject is the account's stream ("account-42"). Saving then needs a registry with keys
/// (EventRegistry::use_personal_data); bank-service does this.
void declare_personal_data(annals::EventRegistry& registry);

}  // namespace bank
