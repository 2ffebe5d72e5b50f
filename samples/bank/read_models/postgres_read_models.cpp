#include "postgres_read_models.hpp"

#include <memory>
#include <mutex>
#include <utility>
#include <variant>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/framework/personal_data_codec.hpp"
#include "annals/projections/postgres/read_model.hpp"

namespace bank {
namespace {

using annals::projections::ReadModel;
using annals::projections::ReadModelMigration;
using annals::projections::ReadModelProjection;

// docs:begin bank-sample-balances
class BalancesTable final : public ReadModelProjection {
 public:
  // Typed handlers: each gets the event upcast and decoded, its context and the writer.
  explicit BalancesTable(const annals::EventRegistry& registry) : ReadModelProjection(registry) {
    using annals::EventContext;
    on<AccountOpened>([](const AccountOpened& e, const EventContext& c, ReadModel& db) {
      db.exec(kOpen, {account_id_of(c.stream_id()), e.owner, c.version()});
    });
    on<MoneyDeposited>([](const MoneyDeposited& e, const EventContext& c, ReadModel& db) {
      db.exec(kMove, {account_id_of(c.stream_id()), e.amount, c.version()});
    });
    on<MoneyWithdrawn>([](const MoneyWithdrawn& e, const EventContext& c, ReadModel& db) {
      db.exec(kMove, {account_id_of(c.stream_id()), -e.amount, c.version()});
    });
    on<AccountClosed>([](const AccountClosed&, const EventContext& c, ReadModel& db) {
      db.exec(kClose, {account_id_of(c.stream_id()), c.version()});
    });
    // The owner's name is personal data: once its subject ("account-<id>") is forgotten, the
    // copy here goes too (docs/personal-data.md).
    on<annals::SubjectForgotten>([](const annals::SubjectForgotten& e, ReadModel& db) {
      const std::string prefix = std::string(Account::kCategory) + "-";
      if (!e.subject.starts_with(prefix)) return;
      db.exec(kEraseOwner, {e.subject.substr(prefix.size()), std::string(annals::kRedacted)});
    });
  }

  std::string name() const override { return std::string(kBalancesProjection); }
  // The handlers' stored type names (old names of renamed types included): account events and
  // SubjectForgotten, which lives in streams of its own (so no category).
  annals::EventFilter filter() const override { return ReadModelProjection::filter(); }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create_bank_balances",
             "CREATE TABLE IF NOT EXISTS bank_balances ("
             " account_id text PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL,"
             " version bigint NOT NULL, status text NOT NULL)"}};
  }
  std::vector<std::string> tables() const override { return {"bank_balances"}; }

 private:
  static constexpr std::string_view kOpen =
      "INSERT INTO bank_balances (account_id, owner, balance, version, status)"
      " VALUES ($1, $2, 0, $3::bigint, 'open')";
  static constexpr std::string_view kMove =
      "UPDATE bank_balances SET balance = balance + $2::bigint, version = $3::bigint"
      " WHERE account_id = $1";
  static constexpr std::string_view kEraseOwner =
      "UPDATE bank_balances SET owner = $2 WHERE account_id = $1";
  static constexpr std::string_view kClose =
      "UPDATE bank_balances SET status = 'closed', version = $2::bigint WHERE account_id = $1";
};
// docs:end

class TransactionsTable final : public ReadModelProjection {
 public:
  explicit TransactionsTable(const annals::EventRegistry& registry) : registry_(registry) {}

  std::string name() const override { return std::string(kTransactionsProjection); }
  annals::EventFilter filter() const override { return account_events(); }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create_bank_transactions",
             "CREATE TABLE IF NOT EXISTS bank_transactions ("
             " account_id text NOT NULL, version bigint NOT NULL, type text NOT NULL,"
             " amount bigint NOT NULL, balance bigint NOT NULL, recorded_at timestamptz NOT NULL,"
             " PRIMARY KEY (account_id, version))"}};
  }
  std::vector<std::string> tables() const override { return {"bank_transactions"}; }

  void handle(const annals::RecordedEvent& event, ReadModel& db) override {
    for (const auto& fact : decode_account_event(registry_, event)) {
      // The balance after the entry is computed from the previous entry, inside the batch's
      // transaction (which sees the batch's own earlier writes).
      const auto entry = transaction_of(fact, 0);
      db.exec(
          "INSERT INTO bank_transactions"
          " (account_id, version, type, amount, balance, recorded_at)"
          " VALUES ($1, $2::bigint, $3, $4::bigint,"
          "  COALESCE((SELECT balance FROM bank_transactions WHERE account_id = $1"
          "            ORDER BY version DESC LIMIT 1), 0) + $5::bigint,"
          "  $6::timestamptz)",
          {fact.account_id, entry.version, entry.type, entry.amount, entry.balance,
           entry.recorded_at});
    }
  }

 private:
  const annals::EventRegistry& registry_;
};

class DailyTotalsTable final : public ReadModelProjection {
 public:
  explicit DailyTotalsTable(const annals::EventRegistry& registry) : registry_(registry) {}

  std::string name() const override { return std::string(kDailyTotalsProjection); }
  annals::EventFilter filter() const override {
    auto filter = account_events();
    filter.event_types = {std::string(MoneyDeposited::kTypeName),
                          std::string(MoneyWithdrawn::kTypeName)};
    return filter;
  }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create_bank_daily_totals",
             "CREATE TABLE IF NOT EXISTS bank_daily_totals ("
             " day date PRIMARY KEY, deposited bigint NOT NULL DEFAULT 0,"
             " withdrawn bigint NOT NULL DEFAULT 0, deposits bigint NOT NULL DEFAULT 0,"
             " withdrawals bigint NOT NULL DEFAULT 0)"}};
  }
  std::vector<std::string> tables() const override { return {"bank_daily_totals"}; }

  void handle(const annals::RecordedEvent& event, ReadModel& db) override {
    for (const auto& fact : decode_account_event(registry_, event)) {
      const std::string day = utc_day(fact.recorded_at);
      if (const auto* deposited = std::get_if<MoneyDeposited>(&fact.event)) {
        add(db, day, kAddDeposit, "deposited", deposited->amount);
      } else if (const auto* withdrawn = std::get_if<MoneyWithdrawn>(&fact.event)) {
        add(db, day, kAddWithdrawal, "withdrawn", withdrawn->amount);
      }
    }
  }

 private:
  // The sum is checked in numeric, where it cannot overflow: a sum outside bigint updates no
  // row and returns none, and the event is refused with the total it would have overflowed.
  static void add(ReadModel& db, const std::string& day, std::string_view sql,
                  const std::string& column, std::int64_t amount) {
    if (!db.exec(sql, {day, amount}).empty()) return;
    const auto rows = db.exec(
        "SELECT " + column + " AS total FROM bank_daily_totals WHERE day = $1::date", {day});
    throw DailyTotalOverflow(day, column, rows.empty() ? 0 : rows[0]["total"].get<std::int64_t>(),
                             amount);
  }

  static constexpr std::string_view kAddDeposit =
      "INSERT INTO bank_daily_totals AS t (day, deposited, deposits) VALUES ($1::date,"
      " $2::bigint, 1) ON CONFLICT (day) DO UPDATE SET"
      " deposited = t.deposited + EXCLUDED.deposited, deposits = t.deposits + 1"
      " WHERE t.deposited::numeric + EXCLUDED.deposited"
      "  BETWEEN -9223372036854775808 AND 9223372036854775807"
      " RETURNING t.day";
  static constexpr std::string_view kAddWithdrawal =
      "INSERT INTO bank_daily_totals AS t (day, withdrawn, withdrawals) VALUES ($1::date,"
      " $2::bigint, 1) ON CONFLICT (day) DO UPDATE SET"
      " withdrawn = t.withdrawn + EXCLUDED.withdrawn, withdrawals = t.withdrawals + 1"
      " WHERE t.withdrawn::numeric + EXCLUDED.withdrawn"
      "  BETWEEN -9223372036854775808 AND 9223372036854775807"
      " RETURNING t.day";

  const annals::EventRegistry& registry_;
};

// The query side: a few connections, each with the three statements prepared.
class PostgresQueries final : public BankQueries {
 public:
  explicit PostgresQueries(std::string connection_string)
      : connection_string_(std::move(connection_string)) {}

  std::optional<AccountView> account(const std::string& account_id) override {
    const auto rows = query("account", {account_id});
    if (rows.empty()) return std::nullopt;
    const auto& row = rows[0];
    return AccountView{.account_id = row[0].as<std::string>(),
                       .owner = row[1].as<std::string>(),
                       .balance = row[2].as<std::int64_t>(),
                       .version = row[3].as<std::int64_t>(),
                       .status = row[4].as<std::string>()};
  }

  std::optional<std::vector<TransactionView>> transactions(const std::string& account_id) override {
    const auto rows = query("transactions", {account_id});
    if (rows.empty()) return std::nullopt;
    std::vector<TransactionView> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(TransactionView{.version = row[0].as<std::int64_t>(),
                                    .type = row[1].as<std::string>(),
                                    .amount = row[2].as<std::int64_t>(),
                                    .balance = row[3].as<std::int64_t>(),
                                    .recorded_at = row[4].as<std::string>()});
    }
    return out;
  }

  std::vector<DailyTotalView> daily_totals() override {
    const auto rows = query("daily_totals", {});
    std::vector<DailyTotalView> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(DailyTotalView{.day = row[0].as<std::string>(),
                                   .deposited = row[1].as<std::int64_t>(),
                                   .withdrawn = row[2].as<std::int64_t>(),
                                   .deposits = row[3].as<std::int64_t>(),
                                   .withdrawals = row[4].as<std::int64_t>()});
    }
    return out;
  }

  std::optional<bool> log_reaches(const annals::Position& position) override {
    const auto rows = query(
        "log_reaches", {std::to_string(position.commit()), std::to_string(position.sequence())});
    return rows[0][0].as<bool>();
  }

 private:
  std::unique_ptr<pqxx::connection> open() const {
    auto c = std::make_unique<pqxx::connection>(connection_string_);
    c->prepare("account",
               "SELECT account_id, owner, balance, version, status FROM bank_balances"
               " WHERE account_id = $1");
    c->prepare("transactions",
               "SELECT version, type, amount, balance,"
               " to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
               " FROM bank_transactions WHERE account_id = $1 ORDER BY version");
    c->prepare("daily_totals",
               "SELECT to_char(day, 'YYYY-MM-DD'), deposited, withdrawn, deposits, withdrawals"
               " FROM bank_daily_totals ORDER BY day");
    // Committed events, settled or not, in the store's log order (its index).
    c->prepare("log_reaches",
               "SELECT EXISTS (SELECT 1 FROM annals.events"
               " WHERE (transaction_id, global_position) >= ($1::text::xid8, $2::bigint))");
    return c;
  }

  pqxx::result query(const char* statement, const std::vector<std::string>& args) {
    std::unique_ptr<pqxx::connection> c;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    try {
      if (!c) c = open();
      pqxx::result rows;
      {
        pqxx::read_transaction tx(*c);
        rows = tx.exec_prepared(statement, pqxx::prepare::make_dynamic_params(args));
        tx.commit();
      }
      std::lock_guard lock(mutex_);
      if (idle_.size() < kMaxIdle) idle_.push_back(std::move(c));
      return rows;
    } catch (const pqxx::broken_connection& e) {
      throw annals::UnavailableError(std::string("read models: cannot reach PostgreSQL: ") +
                                     e.what());
    } catch (const pqxx::sql_error& e) {
      throw annals::InternalError(std::string("read models: query failed (SQLSTATE ") +
                                  e.sqlstate() + "): " + e.what());
    } catch (const pqxx::failure& e) {
      throw annals::UnavailableError(std::string("read models: ") + e.what());
    }
  }

  static constexpr std::size_t kMaxIdle = 8;
  std::string connection_string_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
};

}  // namespace

BankReadModels make_postgres_read_models(const annals::EventRegistry& registry,
                                         const std::string& connection_string) {
  BankReadModels models;
  models.projections = {std::make_shared<BalancesTable>(registry),
                        std::make_shared<TransactionsTable>(registry),
                        std::make_shared<DailyTotalsTable>(registry)};
  models.queries = std::make_unique<PostgresQueries>(connection_string);
  return models;
}

}  // namespace bank
