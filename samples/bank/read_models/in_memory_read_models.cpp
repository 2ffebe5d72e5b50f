#include "in_memory_read_models.hpp"

#include <map>
#include <mutex>
#include <shared_mutex>
#include <variant>

#include "annals/framework/personal_data_codec.hpp"
#include "annals/projections/projection.hpp"

namespace bank {
namespace {

using annals::projections::InProcessProjection;

// The shared part of the three projections: decoding, deduplication by position, a lock that
// lets HTTP threads read while the runner's thread writes.
class MemoryProjection : public InProcessProjection {
 public:
  MemoryProjection(const annals::EventRegistry& registry, std::string_view name)
      : registry_(registry), name_(name) {}

  std::string name() const override { return name_; }
  annals::EventFilter filter() const override { return account_events(); }

  void handle(const annals::RecordedEvent& event) override {
    std::unique_lock lock(mutex_);
    // At-least-once delivery: a batch that failed comes again from its first event.
    if (applied_ && event.position <= *applied_) return;
    if (event.type == annals::SubjectForgotten::kTypeName) {
      if (const auto account = forgotten_account(registry_, event)) erase_owner(*account);
    } else {
      for (const auto& fact : decode_account_event(registry_, event)) on_fact(fact);
    }
    applied_ = event.position;
  }

  void clear() override {
    std::unique_lock lock(mutex_);
    forget();
    applied_.reset();
  }

 protected:
  // Called with the lock held.
  virtual void on_fact(const AccountFact& fact) = 0;
  virtual void forget() = 0;
  // A subject was forgotten (SubjectForgotten): erase the copies of its personal data.
  virtual void erase_owner(const std::string& /*account_id*/) {}

  const annals::EventRegistry& event_registry() const noexcept { return registry_; }

  mutable std::shared_mutex mutex_;

 private:
  const annals::EventRegistry& registry_;
  std::string name_;
  std::optional<annals::Position> applied_;
};

class Balances final : public MemoryProjection {
 public:
  explicit Balances(const annals::EventRegistry& registry)
      : MemoryProjection(registry, kBalancesProjection) {}

  std::optional<AccountView> find(const std::string& account_id) const {
    std::shared_lock lock(mutex_);
    const auto found = rows_.find(account_id);
    if (found == rows_.end()) return std::nullopt;
    return found->second;
  }

 private:
  void on_fact(const AccountFact& fact) override {
    if (std::holds_alternative<AccountOpened>(fact.event)) {
      rows_[fact.account_id] = AccountView{.account_id = fact.account_id,
                                           .owner = std::get<AccountOpened>(fact.event).owner,
                                           .balance = 0,
                                           .version = fact.version,
                                           .status = "open"};
      return;
    }
    auto& row = rows_[fact.account_id];
    row.version = fact.version;
    if (const auto* deposited = std::get_if<MoneyDeposited>(&fact.event)) {
      row.balance += deposited->amount;
    } else if (const auto* withdrawn = std::get_if<MoneyWithdrawn>(&fact.event)) {
      row.balance -= withdrawn->amount;
    } else {
      row.status = "closed";
    }
  }
  void forget() override { rows_.clear(); }
  // The owner's name is the only personal data the bank copies (docs/personal-data.md).
  void erase_owner(const std::string& account_id) override {
    const auto found = rows_.find(account_id);
    if (found != rows_.end()) found->second.owner = std::string(annals::kRedacted);
  }
  annals::EventFilter filter() const override {
    return account_and_forgotten_events(event_registry());
  }

  std::map<std::string, AccountView> rows_;
};

class Transactions final : public MemoryProjection {
 public:
  explicit Transactions(const annals::EventRegistry& registry)
      : MemoryProjection(registry, kTransactionsProjection) {}

  std::optional<std::vector<TransactionView>> find(const std::string& account_id) const {
    std::shared_lock lock(mutex_);
    const auto found = rows_.find(account_id);
    if (found == rows_.end()) return std::nullopt;
    return found->second;
  }

 private:
  void on_fact(const AccountFact& fact) override {
    auto& history = rows_[fact.account_id];
    const std::int64_t before = history.empty() ? 0 : history.back().balance;
    history.push_back(transaction_of(fact, before));
  }
  void forget() override { rows_.clear(); }

  std::map<std::string, std::vector<TransactionView>> rows_;
};

class DailyTotals final : public MemoryProjection {
 public:
  explicit DailyTotals(const annals::EventRegistry& registry)
      : MemoryProjection(registry, kDailyTotalsProjection) {}

  std::vector<DailyTotalView> all() const {
    std::shared_lock lock(mutex_);
    std::vector<DailyTotalView> out;
    out.reserve(rows_.size());
    for (const auto& [day, row] : rows_) out.push_back(row);
    return out;
  }

 private:
  void on_fact(const AccountFact& fact) override {
    const auto* deposited = std::get_if<MoneyDeposited>(&fact.event);
    const auto* withdrawn = std::get_if<MoneyWithdrawn>(&fact.event);
    if (deposited == nullptr && withdrawn == nullptr) return;
    const std::string day = utc_day(fact.recorded_at);
    // Computed on a copy: a refused event (DailyTotalOverflow) leaves the row as it was.
    const auto found = rows_.find(day);
    DailyTotalView row = found == rows_.end() ? DailyTotalView{.day = day} : found->second;
    if (deposited != nullptr) {
      row.deposited = add_to_daily_total(row.deposited, deposited->amount, day, "deposited");
      ++row.deposits;
    } else {
      row.withdrawn = add_to_daily_total(row.withdrawn, withdrawn->amount, day, "withdrawn");
      ++row.withdrawals;
    }
    rows_[day] = std::move(row);
  }
  void forget() override { rows_.clear(); }

  std::map<std::string, DailyTotalView> rows_;  // ordered by day
};

class MemoryQueries final : public BankQueries {
 public:
  MemoryQueries(std::shared_ptr<Balances> balances, std::shared_ptr<Transactions> transactions,
                std::shared_ptr<DailyTotals> totals)
      : balances_(std::move(balances)),
        transactions_(std::move(transactions)),
        totals_(std::move(totals)) {}

  std::optional<AccountView> account(const std::string& account_id) override {
    return balances_->find(account_id);
  }
  std::optional<std::vector<TransactionView>> transactions(const std::string& account_id) override {
    return transactions_->find(account_id);
  }
  std::vector<DailyTotalView> daily_totals() override { return totals_->all(); }

 private:
  std::shared_ptr<Balances> balances_;
  std::shared_ptr<Transactions> transactions_;
  std::shared_ptr<DailyTotals> totals_;
};

}  // namespace

BankReadModels make_in_memory_read_models(const annals::EventRegistry& registry) {
  auto balances = std::make_shared<Balances>(registry);
  auto transactions = std::make_shared<Transactions>(registry);
  auto totals = std::make_shared<DailyTotals>(registry);
  BankReadModels models;
  models.projections = {balances, transactions, totals};
  models.queries = std::make_unique<MemoryQueries>(balances, transactions, totals);
  return models;
}

}  // namespace bank
