#include "views.hpp"

#include <variant>

#include "annals/eventstore/timestamp.hpp"
#include "annals/framework/personal_data_codec.hpp"

namespace bank {
annals::projections::ProjectionOptions bank_projection_options(std::string_view name) {
  annals::projections::ProjectionOptions options;
  if (name == kDailyTotalsProjection)
    options.on_failure = annals::projections::OnFailure::kDeadLetter;
  return options;
}

std::string utc_day(std::chrono::system_clock::time_point time) {
  return annals::format_timestamp(time).substr(0, 10);  // "YYYY-MM-DD"
}

std::string account_id_of(const annals::StreamId& stream) {
  const std::string& id = stream.value();
  const auto dash = id.find('-');
  return dash == std::string::npos ? id : id.substr(dash + 1);
}

std::vector<AccountFact> decode_account_event(const annals::EventRegistry& registry,
                                              const annals::RecordedEvent& event) {
  std::vector<AccountFact> facts;
  // The tombstone of a deleted (closed) account is the store's, not the account's: the read
  // models keep the closed account's rows, and the API answers 410 for it.
  if (event.type == annals::kStreamDeletedType) return facts;
  for (auto& decoded : registry.decode<Account::Event>(event)) {
    facts.push_back(AccountFact{account_id_of(event.stream_id), event.version, event.position,
                                event.recorded_at, std::move(decoded)});
  }
  return facts;
}

annals::EventFilter account_and_forgotten_events(const annals::EventRegistry& registry) {
  annals::EventFilter filter;
  for (const auto& type : {AccountOpened::kTypeName, MoneyDeposited::kTypeName,
                           MoneyWithdrawn::kTypeName, AccountClosed::kTypeName}) {
    for (auto& source : registry.source_types(type)) filter.event_types.push_back(source);
  }
  filter.event_types.emplace_back(annals::SubjectForgotten::kTypeName);
  return filter;
}

std::optional<std::string> forgotten_account(const annals::EventRegistry& registry,
                                             const annals::RecordedEvent& event) {
  if (event.type != annals::SubjectForgotten::kTypeName) return std::nullopt;
  for (const auto& decoded : registry.decode<std::variant<annals::SubjectForgotten>>(event)) {
    const auto& subject = std::get<annals::SubjectForgotten>(decoded).subject;
    const std::string prefix = std::string(Account::kCategory) + "-";
    if (subject.starts_with(prefix)) return subject.substr(prefix.size());
  }
  return std::nullopt;
}

annals::EventFilter account_events() {
  return annals::EventFilter{.category = std::string(Account::kCategory), .event_types = {}};
}

TransactionView transaction_of(const AccountFact& fact, std::int64_t balance_before) {
  TransactionView view{.version = fact.version,
                       .type = "",
                       .amount = 0,
                       .balance = balance_before,
                       .recorded_at = annals::format_timestamp(fact.recorded_at)};
  std::visit(Overloaded{[&](const AccountOpened&) { view.type = "opened"; },
                        [&](const MoneyDeposited& e) {
                          view.type = "deposit";
                          view.amount = e.amount;
                          view.balance += e.amount;
                        },
                        [&](const MoneyWithdrawn& e) {
                          view.type = "withdrawal";
                          view.amount = e.amount;
                          view.balance -= e.amount;
                        },
                        [&](const AccountClosed&) { view.type = "closed"; }},
             fact.event);
  return view;
}

}  // namespace bank
