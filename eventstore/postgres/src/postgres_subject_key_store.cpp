// PostgresSubjectKeyStore: the SubjectKeyStore on PostgreSQL (sql/0015_subject_keys.sql). One
// prepared statement per call on a pooled autocommit connection; driver failures are
// translated once, by SQLSTATE, in error_translation.cpp. Key material is never part of a
// message this file builds: errors name the subject's length or the key id only.
#include <string>
#include <string_view>
#include <utility>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"
#include "connection_pool.hpp"
#include "connection_string.hpp"
#include "pooled_call.hpp"
#include "subject_key_sql.hpp"
#include "watchdog.hpp"

namespace annals::postgres {
namespace {

void prepare_statements(pqxx::connection& connection) {
  connection.prepare(subject_key_sql::kGetOrCreateName, subject_key_sql::kGetOrCreate);
  connection.prepare(subject_key_sql::kFindName, subject_key_sql::kFind);
  connection.prepare(subject_key_sql::kForgetName, subject_key_sql::kForget);
}

void validate_options(const PostgresSubjectKeyStoreOptions& options) {
  constexpr std::string_view kOwner = "PostgresSubjectKeyStoreOptions";
  detail::validate_timeouts(options.connection_timeouts, kOwner);
  detail::validate_duration(options.acquire_timeout, kOwner, "acquire_timeout", false);
  detail::validate_duration(options.call_timeout, kOwner, "call_timeout", false);
}

std::string to_hex(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::vector<std::uint8_t> from_hex(std::string_view hex) {
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out;
  if (hex.size() % 2 != 0) throw InternalError("subject key material: odd hex length");
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]);
    const int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) throw InternalError("subject key material: not hex");
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return out;
}

void validate_candidate(const StoredSubjectKey& key) {
  validate_subject(key.subject);
  if (key.material.size() < 32 || key.material.size() > 256) {
    throw InvalidArgumentError("subject key material must be 32 to 256 bytes, got " +
                               std::to_string(key.material.size()));
  }
  if (key.wrapping != "none" && !key.wrapping.starts_with("master:")) {
    throw InvalidArgumentError("subject key wrapping must be \"none\" or \"master:...\"");
  }
  static_cast<void>(EventId::parse(key.key_id));  // a UUID, or InvalidArgumentError
}

class PostgresSubjectKeyStore final : public SubjectKeyStore {
 public:
  explicit PostgresSubjectKeyStore(PostgresSubjectKeyStoreOptions options)
      : options_(std::move(options)),
        watchdog_(options_.call_timeout),
        pool_(detail::with_timeouts(options_.connection_string, options_.connection_timeouts),
              options_.pool_size, prepare_statements, options_.acquire_timeout) {
    const auto rows = run("open subject key store", [](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return tx.exec(subject_key_sql::kTablePresent);
    });
    if (!rows[0][0].as<bool>()) {
      throw NotFoundError(
          "the annals.subject_keys table (migration 0015) is missing from the database; run "
          "`annals migrate`");
    }
    if (!rows[0][1].as<bool>()) {
      throw PermissionDeniedError(
          "this role may not read annals.subject_keys (the writer may; the reader and the "
          "auditor may not: docs/security.md)");
    }
  }

  StoredSubjectKey get_or_create(const StoredSubjectKey& candidate) override {
    validate_candidate(candidate);
    const auto hex = to_hex(candidate.material);
    // Two attempts suffice: the second statement's snapshot sees the key that won the race.
    for (int attempt = 0; attempt < 3; ++attempt) {
      const auto rows = run("get or create the key of a subject", [&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return tx.exec_prepared(subject_key_sql::kGetOrCreateName, candidate.key_id,
                                candidate.subject, hex, candidate.wrapping);
      });
      if (rows.empty()) continue;
      const auto& row = rows[0];
      return StoredSubjectKey{.subject = candidate.subject,
                              .key_id = row[0].as<std::string>(),
                              .material = from_hex(row[1].as<std::string>()),
                              .wrapping = row[2].as<std::string>()};
    }
    throw UnavailableError(
        "the key of a subject was created and forgotten concurrently three "
        "times in a row; try again");
  }

  SubjectKeyLookup find(std::string_view subject, std::string_view key_id) override {
    const auto rows = run("find subject key " + std::string(key_id), [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec_prepared(subject_key_sql::kFindName, std::string(subject),
                              std::string(key_id));
    });
    if (rows.empty()) return {};
    const auto& row = rows[0];
    if (row[2].as<bool>() || row[0].is_null()) return {SubjectKeyState::kForgotten, std::nullopt};
    return {SubjectKeyState::kLive, StoredSubjectKey{.subject = std::string(subject),
                                                     .key_id = std::string(key_id),
                                                     .material = from_hex(row[0].as<std::string>()),
                                                     .wrapping = row[1].as<std::string>()}};
  }

  ForgottenKeys forget(std::string_view subject) override {
    validate_subject(subject);
    const auto rows = run("forget a subject", [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec_prepared(subject_key_sql::kForgetName, std::string(subject));
    });
    ForgottenKeys result;
    for (const auto& row : rows) {
      result.key_ids.push_back(row[0].as<std::string>());
      if (row[1].as<bool>()) ++result.destroyed_now;
    }
    return result;
  }

 private:
  // Every statement is safe to repeat: a broken connection is "unavailable", never in doubt.
  template <typename F>
  pqxx::result run(const std::string& what, F&& f) {
    return detail::run_pooled(
        pool_, what, false,
        detail::RetryPolicy{.max_broken_retries = options_.max_retries_on_broken_connection,
                            .call_timeout = options_.call_timeout,
                            .watchdog = &watchdog_},
        std::forward<F>(f));
  }

  PostgresSubjectKeyStoreOptions options_;
  detail::Watchdog watchdog_;
  detail::ConnectionPool<pqxx::connection> pool_;
};

}  // namespace

std::unique_ptr<SubjectKeyStore> make_postgres_subject_key_store(
    PostgresSubjectKeyStoreOptions options) {
  validate_options(options);
  return std::make_unique<PostgresSubjectKeyStore>(std::move(options));
}

}  // namespace annals::postgres
