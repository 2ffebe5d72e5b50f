// Restores into another cluster (sql/0013; docs/schema.md, "Restoring a dump").
//
// Positions in the global log carry the transaction id of the append. A dump restored into a
// new cluster (pg_dump/pg_restore, or a managed service's snapshot restore) brings the old
// cluster's transaction ids, usually far ahead of the new server's counter; a store refuses to
// open such a database, because new events would sort before the restored ones. Instead of
// moving the server's counter (pg_resetwal, which managed services do not offer), the store
// adds an offset to the server's transaction ids, set once after the restore:
//
//   const auto status = annals::postgres::check_restore(url);   // annals restore-check
//   if (status.needs_fix()) annals::postgres::fix_restore(owner_url);  // ... --fix
//
// Positions stored before the move (projection checkpoints, a subscriber's last position)
// stay valid: every event appended afterwards sorts after every restored one, and readers
// still never skip (tests/integration/eventstore/restore_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "annals/eventstore/error.hpp"

namespace annals::postgres {

/// fix_restore() was refused because other sessions are connected to the database: a
/// transaction that began before the fix could still record ids below the stored ones.
/// Nothing was changed; stop the services and runners using the database and run it again.
class RestoreBlockedError : public ConcurrencyError {
 public:
  explicit RestoreBlockedError(const std::string& message) : ConcurrencyError(message) {}
  [[nodiscard]] bool retryable() const noexcept override { return false; }
};

/// What check_restore() finds. Regular value type.
struct RestoreStatus {
  /// The highest stored transaction id; empty when the log is empty.
  std::optional<std::uint64_t> stored_max;
  /// The next transaction id the store will record on this server (offset included).
  std::uint64_t server_next = 0;
  /// The offset added to the server's transaction ids (0 unless a fix set one).
  std::uint64_t offset = 0;
  /// Sessions other than the caller's connected to the database.
  int other_sessions = 0;

  /// Whether stored ids are not below the next one: stores refuse to open until fixed.
  [[nodiscard]] bool needs_fix() const noexcept {
    return stored_max.has_value() && *stored_max >= server_next;
  }
  friend bool operator==(const RestoreStatus&, const RestoreStatus&) = default;
};

/// Reads the transaction ids of the database at `connection_string`. Changes nothing.
/// Throws: NotFoundError (no annals schema, or migration 0013 not applied: run migrate),
/// UnavailableError (server unreachable), PermissionDeniedError (a role without access).
/// Cost: one connection, two small statements.
/// Thread safety: any thread; no shared state.
[[nodiscard]] RestoreStatus check_restore(const std::string& connection_string);

/// What fix_restore() did.
struct RestoreFix {
  std::uint64_t old_offset = 0;
  std::uint64_t new_offset = 0;  ///< equal to old_offset when nothing needed fixing
  RestoreStatus after;           ///< check_restore() right after
};

/// Sets the offset so that every transaction id recorded from now on is above every stored
/// one (annals.fix_restored_xids). Changes nothing when that already holds; safe to repeat.
/// Requires: the owner of the store's functions (the owner role or a superuser; the URL
/// `annals migrate` uses), and no other session connected to the database.
/// Throws: RestoreBlockedError naming how many other sessions are connected (nothing changed),
/// PermissionDeniedError (not the owner), NotFoundError and UnavailableError as
/// check_restore().
/// Cost: one connection; takes an EXCLUSIVE lock on annals.events (reads go on) for a few
/// statements. Thread safety: any thread.
RestoreFix fix_restore(const std::string& connection_string);

}  // namespace annals::postgres
