// Internal: a connection of the PostgreSQL projection store, and how its statements reach the
// server: as named prepared statements, prepared once per connection (the default), or sent
// unnamed, their SQL text parsed with every call
// (PostgresProjectionStoreOptions::prepare_statements = false).
//
// Why both: a named prepared statement lives in one server session. PgBouncer 1.18 (Debian 12)
// in transaction mode runs each transaction of a client on whichever server connection is free,
// where the statement does not exist (or another client's of the same name does). Within one
// transaction the server connection stays the same, so a batch's pipelined writes and the check
// that parses a read-model statement before its first use work unnamed as well.
//
// Every statement is registered by name (prepare(), as for libpqxx) and executed by name
// (exec_statement()), so the store's code reads the same in both modes.
#pragma once

#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include <pqxx/pqxx>

#include "write_pipeline.hpp"

namespace annals::projections::detail {

/// A libpqxx connection that knows the SQL of each statement registered on it and whether to
/// send statements named or unnamed.
///
/// Thread safety: one thread at a time (a pooled session's).
class StatementConnection : public pqxx::connection {
 public:
  explicit StatementConnection(const std::string& connection_string)
      : pqxx::connection(connection_string) {}

  /// From now on, statements are sent unnamed (the store's pool calls it on each new
  /// connection when prepare_statements is off, before any statement runs).
  void use_unnamed_statements() noexcept { unnamed_ = true; }
  [[nodiscard]] bool unnamed() const noexcept { return unnamed_; }

  /// Registers `sql` under `name`: libpqxx prepares it on first use, and the text is kept for
  /// unnamed execution. Deliberately hides pqxx::connection::prepare, so that every
  /// registration through this type (the store's statements, the read-model helpers') keeps
  /// its text. Cost: none (libpqxx prepares lazily).
  void prepare(const std::string& name, const std::string& sql);

  /// The SQL registered under `name`.
  /// Throws: InternalError when nothing is registered under it.
  [[nodiscard]] const std::string& sql_of(const std::string& name) const;

  /// Has the server parse statement `name` now, so that a statement that does not parse (a
  /// missing table or column) fails here rather than in a later pipeline: prepares it under
  /// its name, or parses it as the session's unnamed statement (inside the caller's
  /// transaction, whose server connection stays put behind a pooler).
  /// Throws: the driver's error. Cost: one round trip (none when already prepared).
  void check(const std::string& name);

  /// Makes statement `name` ready to be queued in a WritePipeline: prepares it on the server
  /// when it is sent named; nothing when unnamed (the pipeline carries its text).
  /// Throws: the driver's error. Cost: one round trip the first time, named; else none.
  void ready_to_queue(const std::string& name);

  /// Queues an execution of statement `name` with `params` in `pipeline`, by name or by text.
  /// Requires: ready_to_queue(name) or check(name) ran on this connection.
  void queue(WritePipeline& pipeline, const std::string& name, std::span<const Param> params);

 private:
  bool unnamed_ = false;
  std::unordered_map<std::string, std::string> sql_;
};

/// Executes statement `name`, registered on the connection of `tx`, with `args` as its
/// parameters: pqxx's exec_prepared, or exec_params with its text when the connection sends
/// statements unnamed.
/// Requires: `tx` runs on a StatementConnection (every session of the store's pools).
/// Throws: the driver's error. Cost: one round trip.
template <typename... Args>
pqxx::result exec_statement(pqxx::transaction_base& tx, const std::string& name, Args&&... args) {
  auto& connection = static_cast<StatementConnection&>(tx.conn());
  if (!connection.unnamed()) return tx.exec_prepared(name, std::forward<Args>(args)...);
  return tx.exec_params(connection.sql_of(name), std::forward<Args>(args)...);
}

}  // namespace annals::projections::detail
