// Verifying stored history (ARCHITECTURE decision 8): recompute every stream's hash chain from
// the stored rows and report each place where history was changed, removed or reordered.
//
//   const auto report = annals::postgres::verify(url);
//   if (!report.ok()) for (const auto& f : report.findings) std::cerr << f.message << '\n';
//
// What a clean report proves: every stored event's hash equals sha256(previous event's hash ||
// the event's stored bytes), and versions run 1, 2, 3, ... without gaps. So no event was
// edited, inserted, removed or reordered inside a stream without rewriting every later hash of
// that stream. Removing a stream's newest events, or rewriting a stream's whole tail, leaves a
// valid chain: to catch that, keep the `digest` of an earlier report (or the head hashes of
// the streams you care about) somewhere the database's administrators cannot write, and
// compare it with a later run's `digest_of()` over the same streams.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/types.hpp"

namespace annals::postgres {

/// What a verification found wrong.
enum class FindingKind {
  kHashMismatch,      ///< an event's stored hash is not the chain's value: it was edited
  kVersionGap,        ///< versions skip (an event was removed) or do not start at 1
  kGuardDisabled,     ///< an append-only trigger of annals.events is missing or disabled
  kTransactionIdsAhead,  ///< stored transaction ids are ahead of the server's (a restore)
};

/// Stable lower-case name: "hash-mismatch", "version-gap", "guard-disabled",
/// "transaction-ids-ahead".
[[nodiscard]] const char* to_string(FindingKind kind) noexcept;

/// One problem, located as precisely as possible.
struct VerifyFinding {
  FindingKind kind = FindingKind::kHashMismatch;
  /// The stream and version concerned (empty for store-wide findings).
  std::optional<std::string> stream_id;
  std::optional<StreamVersion> version;
  /// A sentence for humans, naming the stream, version and what differs.
  std::string message;
};

/// Options of verify().
struct VerifyOptions {
  /// Verify this stream only. Default: every stream.
  std::optional<std::string> stream;
  /// Most findings reported (the counts still cover everything). Default 100.
  std::size_t max_findings = 100;
};

/// The result of verify().
struct VerifyReport {
  /// Streams and events examined.
  std::int64_t streams = 0;
  std::int64_t events = 0;
  /// Problems found, in stream and version order (store-wide ones first). Empty when ok().
  std::vector<VerifyFinding> findings;
  /// True when findings were cut at max_findings.
  bool truncated = false;
  /// Hex SHA-256 over every examined stream's id and head hash, in stream order: changes
  /// whenever any examined stream gains, loses or changes an event. Record it to detect
  /// later truncation.
  std::string digest;

  [[nodiscard]] bool ok() const noexcept { return findings.empty(); }
};

/// Recomputes the hash chains in one consistent snapshot (a read-only repeatable-read
/// transaction), server-side: only findings travel to the client.
/// Throws: UnavailableError, NotFoundError (schema not migrated).
/// Cost: one connection; a full scan of annals.events (or of one stream) and its primary key.
[[nodiscard]] VerifyReport verify(const std::string& connection_string,
                                  const VerifyOptions& options = {});

}  // namespace annals::postgres
