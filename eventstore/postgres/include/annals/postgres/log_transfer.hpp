// Export and import of the log as NDJSON (`annals export`, `annals import`; docs/cli.md,
// docs/auditing.md).
//
//   std::ofstream file("log.ndjson");
//   annals::postgres::export_log(url, {.category = "account"}, file);
//   ... on another store:
//   annals::postgres::import_log(owner_url, "log.ndjson");
//
// One line per event, in log order, with the keys `annals read-all` prints (stream, version,
// position, event_id, type, schema_version, data, metadata, recorded_at) followed by
// `transaction_id` and `hash` (lower-case hex): every stored column. An import recomputes every
// hash chain of the file in the client (the bytes of annals.event_hash, docs/schema.md) before
// it writes anything, refuses a changed file naming the first bad event, keeps ids, versions,
// times and hashes, and writes nothing for events already stored as they are in the file.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include "annals/eventstore/types.hpp"

namespace annals::postgres {

/// Options of export_log().
struct ExportOptions {
  /// Only events of streams in this category (the stream id up to its first '-'). Default: all.
  std::optional<std::string> category = std::nullopt;
  /// Only events strictly after this position. Default: from the start of the log.
  Position after = Position::start();
};

/// What export_log() wrote.
struct ExportSummary {
  std::int64_t events = 0;
  /// The position of the last event written (`after` when none was).
  Position last = Position::start();
};

/// Writes the settled global log (what read_all returns: never an event of a transaction older
/// ones may still precede) as NDJSON to `out`, page by page in constant memory.
/// Throws: NotFoundError (no annals schema, or not migrated), UnavailableError,
/// PermissionDeniedError, InvalidArgumentError (an invalid category), std::ios_base::failure
/// when `out` fails. Cost: one connection; one query per 1,000 events. Thread safety: any
/// thread.
ExportSummary export_log(const std::string& connection_string, const ExportOptions& options,
                         std::ostream& out);

/// What import_log() did.
struct ImportSummary {
  std::int64_t events = 0;          ///< lines read
  std::int64_t written = 0;         ///< events stored by this import
  std::int64_t already_stored = 0;  ///< events that were stored already, as in the file
  std::int64_t streams = 0;         ///< distinct streams in the file
};

/// How far an import is (ImportOptions::on_progress).
struct ImportProgress {
  std::uint64_t bytes_read = 0;   ///< of the file, in the current pass
  std::uint64_t bytes_total = 0;  ///< the file's size when the import began
  std::int64_t events = 0;        ///< lines read in the current pass
};

/// Options of import_log().
struct ImportOptions {
  /// Called on the importing thread after every 1,000 lines and once at the end of each pass
  /// over the file (one pass, or two when some of its events are stored already: the second
  /// starts again at 0 bytes). Must not throw. Default: none.
  std::function<void(const ImportProgress&)> on_progress = nullptr;
};

/// Verifies every hash chain of the NDJSON file `path` (as export_log() writes it), then stores
/// its events in one transaction, in file order, keeping event ids, stream versions, recorded
/// times and hashes (the database gives new transaction ids and positions). A stream may start
/// after version 1 in the file (an export with `after` or a category) when the store holds its
/// earlier events: the first event must then chain to the stored last one. Importing the same
/// file again writes nothing.
/// Requires: the owner of the store (the writer role may not set hashes or times).
/// Throws: CorruptionError naming the line, stream and version of the first event whose hash
/// does not match its content and predecessor, or that leaves a gap (nothing written);
/// InvalidArgumentError for a line that is not an event as export_log() writes it (naming the
/// line); IdempotencyError when an event id of the file is stored as another event, or a
/// stream's version is taken by another event (nothing written); NotFoundError when the file
/// cannot be read; the store's errors as export_log().
/// Every line is verified as it is sent and nothing is committed before the last one is: the
/// events written are exactly the ones verified, even if the file changes during the import.
/// Cost: one connection; reads the file once and sends it in one COPY (about the speed of a
/// plain COPY of the same rows); when the store holds some of its events already, the COPY is
/// undone at the first of them and the file is read again and written 1,000 events per
/// statement, skipping those stored.
ImportSummary import_log(const std::string& connection_string, const std::string& path,
                         const ImportOptions& options = {});

}  // namespace annals::postgres
