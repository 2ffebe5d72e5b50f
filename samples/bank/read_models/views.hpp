// The bank's read side as the HTTP API sees it: the views (balances, transaction history,
// daily totals), their JSON, and the BankQueries interface that the document read models
// answer (document_read_models.hpp), on PostgreSQL or in memory (--memory) alike.
//
// Thread safety: views are values; BankQueries implementations may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "account.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/runner.hpp"

namespace bank {

/// Projection names: the keys of their checkpoints, leases and dead letters.
inline constexpr std::string_view kBalancesProjection = "bank.balances";
inline constexpr std::string_view kTransactionsProjection = "bank.transactions";
inline constexpr std::string_view kDailyTotalsProjection = "bank.daily_totals";

/// One account in the balances read model.
struct AccountView {
  std::string account_id;
  std::string owner;
  std::int64_t balance = 0;  // cents
  /// The stream version of the last event applied.
  std::int64_t version = 0;
  std::string status;  // "open" or "closed"
  friend bool operator==(const AccountView&, const AccountView&) = default;
};

/// One entry of an account's history: every event of the account, money or not.
struct TransactionView {
  std::int64_t version = 0;
  std::string type;          // "opened", "deposit", "withdrawal", "closed"
  std::int64_t amount = 0;   // cents; 0 for "opened" and "closed"
  std::int64_t balance = 0;  // after this entry
  std::string recorded_at;   // RFC 3339, UTC, microseconds
  friend bool operator==(const TransactionView&, const TransactionView&) = default;
};

/// Money moved on one UTC day (by the store's recorded_at).
struct DailyTotalView {
  std::string day;  // YYYY-MM-DD
  std::int64_t deposited = 0;
  std::int64_t withdrawn = 0;
  std::int64_t deposits = 0;
  std::int64_t withdrawals = 0;
  friend bool operator==(const DailyTotalView&, const DailyTotalView&) = default;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountView, account_id, owner, balance, version, status)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransactionView, version, type, amount, balance, recorded_at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DailyTotalView, day, deposited, withdrawn, deposits, withdrawals)

/// How the runner runs the bank projection `name`: the daily totals park an event they cannot
/// apply (a day's sum beyond 64 bits, refused by the document store; after the usual retries)
/// as a dead letter and go on; balances and transactions stop on one (their documents would be
/// wrong from then on). Cost: nothing.
[[nodiscard]] annals::projections::ProjectionOptions bank_projection_options(std::string_view name);

/// Reads the bank's read models.
class BankQueries {
 public:
  BankQueries() = default;
  BankQueries(const BankQueries&) = delete;
  BankQueries& operator=(const BankQueries&) = delete;
  virtual ~BankQueries() = default;

  /// The account's balance row, or empty when the read model has not seen it.
  /// Throws: UnavailableError (database unreachable).
  [[nodiscard]] virtual std::optional<AccountView> account(const std::string& account_id) = 0;
  /// The account's history in version order, or empty when the read model has not seen it.
  [[nodiscard]] virtual std::optional<std::vector<TransactionView>> transactions(
      const std::string& account_id) = 0;
  /// Every day with money movements, oldest first.
  [[nodiscard]] virtual std::vector<DailyTotalView> daily_totals() = 0;
  /// Whether the log holds a committed event at or after `position`, settled or not. An event
  /// whose transaction committed while an older transaction is still open lies above
  /// EventStore::head_position() until that one ends, yet a command has already returned its
  /// position. Empty when these read models cannot tell (the in-memory store's head is exact).
  /// Throws: UnavailableError (database unreachable). Cost: one indexed query, or nothing.
  [[nodiscard]] virtual std::optional<bool> log_reaches(const annals::Position& position) {
    static_cast<void>(position);
    return std::nullopt;
  }
};

/// The three projections and the queries over what they write.
struct BankReadModels {
  std::vector<std::shared_ptr<annals::projections::Projection>> projections;
  std::unique_ptr<BankQueries> queries;
};

/// The visitor of std::visit made of lambdas.
template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

/// The UTC day of `time`: "2024-05-01".
[[nodiscard]] std::string utc_day(std::chrono::system_clock::time_point time);
/// The account id of an account stream ("account-a1" -> "a1").
[[nodiscard]] std::string account_id_of(const annals::StreamId& stream);

/// One stored account event, decoded, with what every read model needs to know about it.
struct AccountFact {
  std::string account_id;
  std::int64_t version = 0;
  annals::Position position;
  std::chrono::system_clock::time_point recorded_at;
  Account::Event event;
};

/// Decodes `event` (upcasting it if needed) through the registry. A tombstone (the stream was
/// deleted, annals::kStreamDeletedType) gives no facts.
/// Throws: UnknownEventTypeError, CorruptionError (the projection then retries and stops or
/// parks the event, per its failure policy).
[[nodiscard]] std::vector<AccountFact> decode_account_event(const annals::EventRegistry& registry,
                                                            const annals::RecordedEvent& event);

/// The filter every bank projection uses: streams of category "account".
[[nodiscard]] annals::EventFilter account_events();

/// The events of the balances read model: every account event plus annals.SubjectForgotten
/// (in its own streams, "annals.subject-<subject>"), by type names and without a category.
[[nodiscard]] annals::EventFilter account_and_forgotten_events(
    const annals::EventRegistry& registry);

/// The account whose owner name a SubjectForgotten event erases: the id of subject
/// "account-<id>"; empty for another subject or event type (docs/personal-data.md).
/// Throws: what EventRegistry::decode throws.
[[nodiscard]] std::optional<std::string> forgotten_account(const annals::EventRegistry& registry,
                                                           const annals::RecordedEvent& event);

/// The history entry an event makes, given the balance before it.
[[nodiscard]] TransactionView transaction_of(const AccountFact& fact, std::int64_t balance_before);

}  // namespace bank
