// The stream-lifecycle verbs of the `annals` tool (docs/cli.md, docs/stream-lifecycle.md):
// `annals delete-stream` (soft delete: a tombstone), `annals stream-meta` (a stream's state and
// retention rules, read or set), and the note `annals read` prints for a deleted stream. They
// run against any EventStore, so tests use the in-memory store.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "annals/eventstore/event_store.hpp"

namespace annals::cli {

/// Arguments of `annals delete-stream STREAM --expected-version V [--json]`.
struct DeleteStreamArgs {
  std::string stream{};
  /// "any", "exists" or a version N >= 1 (required: deleting is never a blind write).
  std::string expected_version{};
  bool json = false;
};

/// Arguments of `annals stream-meta STREAM [--max-count N] [--max-age SECONDS]
/// [--truncate-before VERSION] [--clear] [--json]`.
struct StreamMetaArgs {
  std::string stream{};
  std::optional<std::int64_t> max_count = std::nullopt;
  std::optional<std::int64_t> max_age_seconds = std::nullopt;
  std::optional<std::int64_t> truncate_before = std::nullopt;
  /// Remove every rule first; the rules given with it are then the only ones.
  bool clear = false;
  bool json = false;
};

/// Deletes the stream (EventWriter::delete_stream) and prints the tombstone's version and
/// position: a line of text, or with --json one object {"stream", "deleted": true, "version",
/// "position"}.
/// Throws: InvalidArgumentError (bad stream id or expected version; "no-stream" and 0 are
/// refused: there would be nothing to delete), NotFoundError (no events), ConcurrencyError,
/// StreamDeletedError (already deleted), the store's errors.
void delete_stream(EventStore& store, const DeleteStreamArgs& args, std::ostream& out);

/// With no rule given and no --clear, prints the stream's state (version, deleted, rules);
/// otherwise sets the rules (the ones given replace the stored ones of the same name, the
/// others are kept unless --clear) and prints the state afterwards. Text: one `key value` line
/// each; --json: one object {"stream", "version", "deleted", "max_count", "max_age",
/// "truncate_before"} (null where there is none; max_age in seconds).
/// Throws: InvalidArgumentError (bad stream id, a rule out of range), the store's errors.
void stream_meta(EventStore& store, const StreamMetaArgs& args, std::ostream& out);

/// After `annals read STREAM`: when the stream is deleted, prints one line to `err` saying so
/// (the tombstone is among the events printed). Prints nothing otherwise.
/// Throws: InvalidArgumentError (bad stream id), the store's errors. Cost: one round trip.
void note_if_deleted(EventReader& store, const std::string& stream, std::ostream& err);

}  // namespace annals::cli
