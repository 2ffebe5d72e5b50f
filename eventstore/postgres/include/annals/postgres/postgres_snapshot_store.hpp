// The PostgreSQL SnapshotStore: one row per stream in annals.snapshots
// (sql/0002_create_snapshots.sql), a cache of aggregate states (ARCHITECTURE decision 10).
//
//   auto snapshots = annals::postgres::make_postgres_snapshot_store({.connection_string = url});
//
// Every call is one prepared statement on a pooled autocommit connection. A broken connection
// is replaced and the call retried; snapshot writes are idempotent upserts, so that is safe.
//
// Thread safety: fully thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "annals/eventstore/snapshot_store.hpp"

namespace annals::postgres {

struct PostgresSnapshotStoreOptions {
  /// libpq connection string: "postgresql://user@host:port/db" or "host=... dbname=...".
  std::string connection_string;
  /// Most connections the store opens (lazily). Snapshot traffic is light: default 4.
  std::size_t pool_size = 4;
  /// How many times a call is retried on a fresh connection after the connection broke.
  /// Default 2.
  int max_retries_on_broken_connection = 2;
};

/// Opens a snapshot store. Connects once to check that migration 0002 is applied.
/// Throws: UnavailableError (cannot connect), NotFoundError (not migrated: run `annals migrate`).
[[nodiscard]] std::unique_ptr<SnapshotStore> make_postgres_snapshot_store(
    PostgresSnapshotStoreOptions options);

}  // namespace annals::postgres
