#include "account.hpp"

#include <string>

#include "annals/framework/personal_data_codec.hpp"

namespace bank {
namespace {

std::string quoted(const std::string& id) { return "\"" + id + "\""; }

void require_amount(std::int64_t amount) {
  if (amount <= 0 || amount > kMaxAmount) throw InvalidAmount(amount);
}

// Deposits, withdrawals and closes need an open account; the error says why not.
void require_open(const Account::State& s, const std::string& account_id) {
  if (s.status == Account::Status::kNew) throw AccountNotFound(account_id);
  if (s.status == Account::Status::kClosed) throw AccountIsClosed(account_id);
}

}  // namespace

bool is_valid_account_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxAccountIdBytes) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '~' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void to_json(nlohmann::json& j, const AccountClosed&) { j = nlohmann::json::object(); }
void from_json(const nlohmann::json& j, AccountClosed&) {
  if (!j.is_object())
    throw nlohmann::json::type_error::create(302, "AccountClosed: not an object", &j);
}

AccountAlreadyExists::AccountAlreadyExists(const std::string& account_id)
    : DomainError("account " + quoted(account_id) + " already exists") {}

AccountNotFound::AccountNotFound(const std::string& account_id)
    : DomainError("account " + quoted(account_id) + " does not exist") {}

AccountIsClosed::AccountIsClosed(const std::string& account_id)
    : DomainError("account " + quoted(account_id) + " is closed") {}

InvalidAmount::InvalidAmount(std::int64_t amount)
    : DomainError("invalid amount " + std::to_string(amount) + ": must be between 1 and " +
                  std::to_string(kMaxAmount) + " cents"),
      amount_(amount) {}

InvalidOwner::InvalidOwner(const std::string& why) : DomainError("invalid owner: " + why) {}

InsufficientFunds::InsufficientFunds(std::int64_t balance, std::int64_t requested)
    : DomainError("insufficient funds: balance " + std::to_string(balance) + ", requested " +
                  std::to_string(requested)),
      balance_(balance),
      requested_(requested) {}

BalanceLimitExceeded::BalanceLimitExceeded(std::int64_t balance, std::int64_t requested)
    : DomainError("balance limit exceeded: balance " + std::to_string(balance) + ", deposit " +
                  std::to_string(requested) + ", limit " + std::to_string(kMaxBalance)),
      balance_(balance),
      requested_(requested) {}

BalanceNotZero::BalanceNotZero(std::int64_t balance)
    : DomainError("cannot close an account with a balance of " + std::to_string(balance) +
                  " cents: withdraw it first"),
      balance_(balance) {}

// docs:begin bank-sample-rules
Account::State Account::evolve(State s, const AccountOpened& e) {
  s.status = Status::kOpen;
  s.owner = e.owner;
  return s;
}
Account::State Account::evolve(State s, const MoneyDeposited& e) {
  s.balance += e.amount;
  return s;
}
Account::State Account::evolve(State s, const MoneyWithdrawn& e) {
  s.balance -= e.amount;
  return s;
}
Account::State Account::evolve(State s, const AccountClosed&) {
  s.status = Status::kClosed;
  return s;
}

AccountOpened Account::decide(const State& s, const OpenAccount& c) {
  if (s.status != Status::kNew) throw AccountAlreadyExists(c.account_id);
  if (c.owner.empty()) throw InvalidOwner("it is empty");
  if (c.owner.size() > kMaxOwnerBytes) {
    throw InvalidOwner("it is longer than " + std::to_string(kMaxOwnerBytes) + " bytes");
  }
  for (const char ch : c.owner) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte < 0x20 || byte == 0x7f) throw InvalidOwner("it contains a control character");
  }
  return AccountOpened{c.owner};
}

MoneyDeposited Account::decide(const State& s, const Deposit& c) {
  require_amount(c.amount);
  require_open(s, c.account_id);
  if (c.amount > kMaxBalance - s.balance) throw BalanceLimitExceeded(s.balance, c.amount);
  return MoneyDeposited{c.amount};
}

MoneyWithdrawn Account::decide(const State& s, const Withdraw& c) {
  require_amount(c.amount);
  require_open(s, c.account_id);
  if (c.amount > s.balance) throw InsufficientFunds(s.balance, c.amount);
  return MoneyWithdrawn{c.amount};
}

AccountClosed Account::decide(const State& s, const CloseAccount& c) {
  require_open(s, c.account_id);
  if (s.balance != 0) throw BalanceNotZero(s.balance);
  return AccountClosed{};
}
// docs:end

const char* to_string(Account::Status status) noexcept {
  switch (status) {
    case Account::Status::kNew:
      return "new";
    case Account::Status::kOpen:
      return "open";
    case Account::Status::kClosed:
      return "closed";
  }
  return "unknown";
}

void register_events(annals::EventRegistry& registry) {
  registry.register_events<Account>();
  registry.register_event<annals::SubjectForgotten>();
}

// docs:begin bank-sample-personal-data
void declare_personal_data(annals::EventRegistry& registry) {
  registry.personal_data<AccountOpened>({"owner"});  // subject: the stream, "account-<id>"
}
// docs:end

}  // namespace bank
