// The PostgreSQL SubjectKeyStore: per-subject keys of personal data in annals.subject_keys
// (sql/0015_subject_keys.sql; docs/personal-data.md).
//
//   auto keys = annals::postgres::make_postgres_subject_key_store({.connection_string = url});
//   annals::PersonalData personal(*keys, *store);  // annals/framework/personal_data.hpp
//
// The table may live in the event store's database or in a database of its own (migrated with
// `annals migrate`), so that backups of the log never hold the keys (docs/personal-data.md,
// "Keeping keys out of backups"). Every call is one prepared statement on a pooled autocommit
// connection; a broken connection is replaced and the call retried (every statement is safe to
// repeat). As the writer role of the role layout it needs SELECT and INSERT on the table and
// EXECUTE on annals.forget_subject, which `annals migrate --roles` grants.
//
// Thread safety: fully thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "annals/eventstore/subject_key_store.hpp"
#include "annals/postgres/connection_options.hpp"

namespace annals::postgres {

struct PostgresSubjectKeyStoreOptions {
  /// libpq connection string: "postgresql://user@host:port/db" or "host=... dbname=...".
  std::string connection_string;
  /// Most connections the store opens (lazily). Default 4.
  std::size_t pool_size = 4;
  /// Retries on a fresh connection after the connection broke. Default 2.
  int max_retries_on_broken_connection = 2;
  /// Connect timeout and keepalives, added to `connection_string` unless it sets them.
  ConnectionTimeouts connection_timeouts;
  /// How long a call waits for a pooled connection before UnavailableError. Default 5 s.
  std::chrono::milliseconds acquire_timeout{5'000};
  /// The longest one call (with its retries) may take before UnavailableError. Default 40 s.
  std::chrono::milliseconds call_timeout{40'000};
};

/// Opens the key store. Connects once to check that migration 0015 is applied.
/// Throws: InvalidArgumentError (an option out of range), UnavailableError (cannot connect),
/// NotFoundError (annals.subject_keys is missing: run `annals migrate`), PermissionDeniedError
/// (the role may not read the table).
[[nodiscard]] std::unique_ptr<SubjectKeyStore> make_postgres_subject_key_store(
    PostgresSubjectKeyStoreOptions options);

}  // namespace annals::postgres
