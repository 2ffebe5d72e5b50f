#include "document_read_models.hpp"

#include <cstdio>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "annals/framework/personal_data_codec.hpp"
#include "annals/projections/documents.hpp"

namespace bank {
namespace {

namespace projections = annals::projections;
using nlohmann::json;
using projections::CollectionSpec;
using projections::DocumentIndex;
using projections::Documents;

// docs:begin bank-sample-balances
// One document per account. Each event changes what it knows: a deposit adds to the stored
// balance (increment), so the handler never reads the document back.
class Balances final : public projections::DocumentProjection {
 public:
  explicit Balances(const annals::EventRegistry& registry) : registry_(registry) {}

  std::string name() const override { return std::string(kBalancesProjection); }
  // Account events and SubjectForgotten, which lives in streams of its own (so no category).
  annals::EventFilter filter() const override { return account_and_forgotten_events(registry_); }
  std::vector<CollectionSpec> collections() const override {
    return {{std::string(kAccountsCollection), {}}};
  }

  void handle(const annals::RecordedEvent& event, Documents& documents) override {
    auto accounts = documents.collection(kAccountsCollection);
    // The owner's name is personal data: once its subject ("account-<id>") is forgotten, the
    // copy here goes too (docs/personal-data.md).
    if (const auto forgotten = forgotten_account(registry_, event)) {
      accounts.patch(*forgotten, {{"owner", annals::kRedacted}});
      return;
    }
    for (const auto& fact : decode_account_event(registry_, event)) {
      const auto& id = fact.account_id;
      std::visit(Overloaded{[&](const AccountOpened& e) {
                              accounts.upsert(id, AccountView{.account_id = id,
                                                              .owner = e.owner,
                                                              .balance = 0,
                                                              .version = fact.version,
                                                              .status = "open"});
                            },
                            [&](const MoneyDeposited& e) { move(accounts, fact, e.amount); },
                            [&](const MoneyWithdrawn& e) { move(accounts, fact, -e.amount); },
                            [&](const AccountClosed&) {
                              accounts.patch(id, {{"status", "closed"}, {"version", fact.version}});
                            }},
                 fact.event);
    }
  }

 private:
  static void move(projections::CollectionWriter& accounts, const AccountFact& fact,
                   std::int64_t amount) {
    accounts.increment(fact.account_id, "balance", amount);
    accounts.patch(fact.account_id, {{"version", fact.version}});
  }

  const annals::EventRegistry& registry_;
};
// docs:end

// "a1/0000000000000000007": an account's entries sort by version under the id order.
std::string entry_id(const std::string& account_id, std::int64_t version) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%019lld", static_cast<long long>(version));
  return account_id + "/" + digits;
}

// One document per event of an account: the entry without the running balance, which depends
// on the entries before it and is summed when the history is read (a handler cannot read).
class Entries final : public projections::DocumentProjection {
 public:
  explicit Entries(const annals::EventRegistry& registry) : registry_(registry) {}

  std::string name() const override { return std::string(kTransactionsProjection); }
  annals::EventFilter filter() const override { return account_events(); }
  std::vector<CollectionSpec> collections() const override {
    return {{std::string(kEntriesCollection), {DocumentIndex::ordered("account_id")}}};
  }

  void handle(const annals::RecordedEvent& event, Documents& documents) override {
    auto entries = documents.collection(kEntriesCollection);
    for (const auto& fact : decode_account_event(registry_, event)) {
      const auto entry = transaction_of(fact, 0);  // balance: the entry's effect on it
      entries.upsert(entry_id(fact.account_id, fact.version),
                     json{{"account_id", fact.account_id},
                          {"version", entry.version},
                          {"type", entry.type},
                          {"amount", entry.amount},
                          {"effect", entry.balance},
                          {"recorded_at", entry.recorded_at}});
    }
  }

 private:
  const annals::EventRegistry& registry_;
};

// One document per UTC day, its four numbers added to by add_to (created by the day's first
// movement). A sum beyond 64 bits is refused by the store: the event fails, and this projection
// parks it as a dead letter and goes on (bank_projection_options).
class DailyTotals final : public projections::DocumentProjection {
 public:
  explicit DailyTotals(const annals::EventRegistry& registry) : registry_(registry) {}

  std::string name() const override { return std::string(kDailyTotalsProjection); }
  annals::EventFilter filter() const override {
    auto filter = account_events();
    filter.event_types = {std::string(MoneyDeposited::kTypeName),
                          std::string(MoneyWithdrawn::kTypeName)};
    return filter;
  }
  std::vector<CollectionSpec> collections() const override {
    return {{std::string(kDailyTotalsCollection), {}}};
  }

  void handle(const annals::RecordedEvent& event, Documents& documents) override {
    auto days = documents.collection(kDailyTotalsCollection);
    for (const auto& fact : decode_account_event(registry_, event)) {
      const std::string day = utc_day(fact.recorded_at);
      if (const auto* deposited = std::get_if<MoneyDeposited>(&fact.event)) {
        days.add_to(day, {{"deposited", deposited->amount}, {"deposits", 1}});
      } else if (const auto* withdrawn = std::get_if<MoneyWithdrawn>(&fact.event)) {
        days.add_to(day, {{"withdrawn", withdrawn->amount}, {"withdrawals", 1}});
      }
    }
  }

 private:
  const annals::EventRegistry& registry_;
};

// Every document of `query`, page after page (1,000 per round trip).
std::vector<projections::Document> all_pages(projections::DocumentReader& reader,
                                             std::string_view collection,
                                             projections::DocumentQuery query) {
  std::vector<projections::Document> out;
  query.limit = 1000;
  for (;;) {
    auto page = reader.find(collection, query, std::nullopt);
    for (auto& document : page.documents) out.push_back(std::move(document));
    if (!page.next) return out;
    query.after = std::move(page.next);
  }
}

class DocumentQueries final : public BankQueries {
 public:
  DocumentQueries(projections::DocumentReader& reader, LogReaches log_reaches)
      : reader_(reader), log_reaches_(std::move(log_reaches)) {}

  std::optional<AccountView> account(const std::string& account_id) override {
    return reader_.collection<AccountView>(std::string(kAccountsCollection)).get(account_id);
  }

  std::optional<std::vector<TransactionView>> transactions(const std::string& account_id) override {
    projections::DocumentQuery query;
    query.filter.eq("account_id", account_id);
    const auto documents = all_pages(reader_, kEntriesCollection, std::move(query));
    if (documents.empty()) return std::nullopt;
    std::vector<TransactionView> history;
    history.reserve(documents.size());
    std::int64_t balance = 0;
    for (const auto& document : documents) {
      const auto& entry = document.data;
      balance += entry.at("effect").get<std::int64_t>();
      history.push_back(TransactionView{.version = entry.at("version").get<std::int64_t>(),
                                        .type = entry.at("type").get<std::string>(),
                                        .amount = entry.at("amount").get<std::int64_t>(),
                                        .balance = balance,
                                        .recorded_at = entry.at("recorded_at").get<std::string>()});
    }
    return history;
  }

  std::vector<DailyTotalView> daily_totals() override {
    std::vector<DailyTotalView> out;
    for (const auto& document : all_pages(reader_, kDailyTotalsCollection, {})) {
      const auto& day = document.data;
      out.push_back(DailyTotalView{.day = document.id,
                                   .deposited = day.value("deposited", std::int64_t{0}),
                                   .withdrawn = day.value("withdrawn", std::int64_t{0}),
                                   .deposits = day.value("deposits", std::int64_t{0}),
                                   .withdrawals = day.value("withdrawals", std::int64_t{0})});
    }
    return out;
  }

  std::optional<bool> log_reaches(const annals::Position& position) override {
    return log_reaches_ ? log_reaches_(position) : std::nullopt;
  }

 private:
  projections::DocumentReader& reader_;
  LogReaches log_reaches_;
};

}  // namespace

BankReadModels make_read_models(const annals::EventRegistry& registry,
                                projections::DocumentReader& reader, LogReaches log_reaches) {
  BankReadModels models;
  models.projections = {std::make_shared<Balances>(registry), std::make_shared<Entries>(registry),
                        std::make_shared<DailyTotals>(registry)};
  models.queries = std::make_unique<DocumentQueries>(reader, std::move(log_reaches));
  return models;
}

}  // namespace bank
