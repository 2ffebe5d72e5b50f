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

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/types.hpp"
#include "annals/postgres/anchor.hpp"

namespace annals::postgres {

/// What a verification found wrong.
enum class FindingKind {
  kHashMismatch,         ///< an event's stored hash is not the chain's value: it was edited
  kVersionGap,           ///< versions skip (an event was removed) or do not start at 1
  kGuardDisabled,        ///< a trigger of annals.events does not fire for ordinary sessions: it is
                         ///< disabled or enabled only in replica mode (not 'O' or 'A')
  kTransactionIdsAhead,  ///< stored transaction ids are ahead of the server's (a restore)
  kTriggerMissing,       ///< an expected trigger of annals.events is absent
  kTriggerUnexpected,    ///< annals.events has a trigger the store does not ship
  kFunctionChanged,      ///< a function of schema annals has another body than the shipped one
  kFunctionMissing,      ///< a shipped function of schema annals is absent
  kFunctionUnexpected,   ///< schema annals has a function the store does not ship
  kFunctionSecurityChanged,  ///< SECURITY DEFINER/INVOKER or SET clauses differ from shipped
  kExcessPrivilege,          ///< a role other than the owner holds INSERT/UPDATE/DELETE/TRUNCATE
                             ///< on annals.events, or INSERT/UPDATE on a database-set column
  kRecordedTimeBackwards,    ///< an event was recorded earlier than its stream predecessor
  kAnchorMismatch,           ///< the log up to an anchor's position no longer gives its digest
  kStreamHeadMismatch,       ///< a partitioned log's stream head (annals.stream_heads) is not its
                             ///< stream's last event, a stream has none, or the table is missing
};

/// Stable lower-case name: "hash-mismatch", "version-gap", "guard-disabled",
/// "transaction-ids-ahead", "trigger-missing", "trigger-unexpected", "function-changed",
/// "function-missing", "function-unexpected", "function-security-changed",
/// "excess-privilege", "recorded-time-backwards", "anchor-mismatch", "stream-head-mismatch".
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
  /// Prove the log up to each anchor's position unchanged (see anchor.hpp). When not empty,
  /// the events checked are those up to the newest anchor, in global order (content and
  /// stream link of each, as without anchors), instead of every stream's chain; `stream` must
  /// then be empty. Default: none.
  std::vector<Anchor> anchors;
  /// With anchors: hash from the start of the log even when an older anchor given here
  /// matches one recorded in annals.anchors. Default false: resume from the newest such
  /// anchor, so only the events after it are read and hashed (incremental; that anchor's
  /// prefix is then taken as proved by the run that verified it).
  bool full = false;
  /// The longest verify() waits for the server without receiving anything: each statement,
  /// and while events stream, each next row. A wait that long has its connection shut down
  /// and verify() fails with UnavailableError; a verify of a large log that keeps receiving
  /// rows is never cut. Zero: no bound (the connection timeouts only). Must not be negative.
  /// Default 60 s.
  std::chrono::milliseconds progress_timeout{60'000};
  /// Called on the verifying thread with the number of events examined so far, after every
  /// 10,000 events and once at the end (a progress display for a long verify). Must not
  /// throw. Default: none.
  std::function<void(std::int64_t events)> on_progress = nullptr;
};

/// What happened to one anchor of VerifyOptions::anchors.
enum class AnchorOutcome {
  kVerified,  ///< the log up to its position gives its events and digest
  kMismatch,  ///< it does not (an anchor-mismatch finding names it)
  kResumed,   ///< matched a recorded anchor; hashing continued from it, its prefix not re-read
  kCovered,   ///< older than the resumed anchor: not re-read in this run
};

/// Stable lower-case name: "verified", "mismatch", "resumed", "covered".
[[nodiscard]] const char* to_string(AnchorOutcome outcome) noexcept;

/// One anchor's result.
struct AnchorCheck {
  Anchor anchor;
  AnchorOutcome outcome = AnchorOutcome::kVerified;
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
  /// Events whose hash was recomputed in the client (all examined events; with anchors, those
  /// after the resumed anchor up to the newest one).
  std::int64_t events_hashed = 0;
  /// With anchors: one result per anchor, oldest position first.
  std::vector<AnchorCheck> anchors;

  [[nodiscard]] bool ok() const noexcept { return findings.empty(); }
};

/// Recomputes every event's hash in the client (SHA-256 of OpenSSL's libcrypto, from the
/// stored columns; no function of the database is trusted) and checks the store's triggers,
/// functions and privileges, all in one consistent snapshot (a read-only repeatable-read
/// transaction). Events stream to the client in primary-key order (libpq single-row mode).
/// Throws: UnavailableError, NotFoundError (schema not migrated), InvalidArgumentError
/// (max_findings 0; a stream together with anchors).
/// Thread safety: any thread; opens its own connection.
/// Cost: one connection; a scan of annals.events (or of one stream) in primary-key order, or
/// with anchors a scan in log order of the anchored range with one primary-key probe per
/// event; a few catalog queries; one SHA-256 over each event's bytes.
[[nodiscard]] VerifyReport verify(const std::string& connection_string,
                                  const VerifyOptions& options = {});

}  // namespace annals::postgres
