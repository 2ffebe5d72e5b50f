// The PostgreSQL DocumentReader: queries of the jsonb tables that DocumentProjections maintain
// (annals/projections/documents.hpp, document_reader.hpp), on a pool of its own, with
// read-your-writes through the projection store's checkpoints.
//
//   auto reader = annals::projections::make_postgres_document_reader({.connection_string = url},
//                                                                    *projection_store);
//   auto accounts = reader->collection<Account>("accounts");
//   std::optional<Account> a = accounts.after(sent.position).get("account-42");
//
// Every statement is prepared once per connection and takes its values as bound parameters;
// collection names and field paths are validated before any SQL is built (docs/read-side.md).
// after() reads the checkpoint through `store`: pointed at a read replica while `store` is on the
// primary, the reader may still query a replica that has not replayed the documents the
// checkpoint covers, so read-your-writes holds only when the reader and `store` use the same
// server (a replica-aware wait is not implemented yet).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "annals/postgres/connection_options.hpp"
#include "annals/projections/document_reader.hpp"

namespace annals::projections {

struct PostgresDocumentReaderOptions {
  /// libpq connection string or URL. Required.
  std::string connection_string;
  /// Most connections held open; one query uses one at a time. Default 8.
  std::size_t pool_size = 8;
  /// Connect timeout and TCP keepalives (annals/postgres/connection_options.hpp).
  postgres::ConnectionTimeouts connection_timeouts;
  /// How long a query waits for a pooled connection while all are in use before it fails with
  /// UnavailableError. Must be positive. Default 5 s.
  std::chrono::milliseconds acquire_timeout{5'000};
  /// The longest one query (with its retries after a lost connection; the wait of after() not
  /// included) may take; then its connection is shut down and it fails with UnavailableError.
  /// Must be positive. Default 30 s.
  std::chrono::milliseconds call_timeout{30'000};
};

/// A reader of the collections in the database of `options.connection_string`, waiting for
/// checkpoints of `store` (which must outlive it). Connects lazily.
/// Throws: InvalidArgumentError (bad options).
/// Thread safety: the reader may be used from any thread at once.
[[nodiscard]] std::unique_ptr<DocumentReader> make_postgres_document_reader(
    PostgresDocumentReaderOptions options, ProjectionStore& store);

}  // namespace annals::projections
