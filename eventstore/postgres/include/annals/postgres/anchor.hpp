// External anchors (ARCHITECTURE decision 8): a small document that commits to the
// whole settled global log up to a position, to be kept where the database's administrators
// cannot write (a file, a Git repository, an RFC 3161 timestamp; docs/auditing.md).
//
//   const annals::postgres::Anchor anchor = annals::postgres::take_anchor(url, {.record = true});
//   std::ofstream("anchor.json") << annals::postgres::to_json(anchor) << '\n';
//   ... later: verify(url, {.anchors = {annals::postgres::parse_anchor(text)}});
//
// The digest: d0 = 32 zero bytes; for each settled event in global order (transaction id,
// global position), d = SHA-256(d || be64(transaction id) || be64(global position) || stored
// hash). Because every stored hash also covers the event's content and its stream
// predecessor's hash (checked by verify), an anchor fixes the content, the presence and the
// order of every event up to its position: a later change, removal, insertion (also one with a
// backdated transaction id) or reordering there changes the digest.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "annals/eventstore/types.hpp"

namespace annals::postgres {

/// The log digest of the settled global log up to `position`. Regular value type.
struct Anchor {
  /// The last settled event covered, as the store prints positions ("<commit>:<sequence>";
  /// "0" = before every event, for an empty log).
  Position position;
  /// Events covered (those at or before `position`).
  std::int64_t events = 0;
  /// Lower-case hex of the 32-byte log digest.
  std::string digest;
  /// When it was taken, RFC 3339 UTC with microseconds (the database's clock).
  std::string time;

  friend bool operator==(const Anchor&, const Anchor&) = default;
};

/// Options of take_anchor().
struct AnchorOptions {
  /// Also store the anchor in annals.anchors, which lets a later verify resume from it
  /// (VerifyOptions::anchors). Default false: only compute it.
  bool record = false;
  /// The longest take_anchor() waits for the server without receiving anything: each
  /// statement, and while the log streams, each next row. A wait that long has its connection
  /// shut down and take_anchor() fails with UnavailableError; a long scan that keeps receiving
  /// rows is never cut. Zero: no bound (the connection timeouts only). Must not be negative.
  /// Default 60 s.
  std::chrono::milliseconds progress_timeout{60'000};
};

/// Computes the anchor of everything settled now (transactions below the snapshot's xmin, the
/// rows readers of the global log can see), in one repeatable-read transaction.
/// Throws: UnavailableError, NotFoundError (schema not migrated, or annals.anchors missing when
/// recording).
/// Thread safety: any thread; opens its own connection.
/// Cost: one connection; a scan of annals.events in log order (index events_log_order_idx)
/// reading three columns; one SHA-256 of 80 bytes per event.
[[nodiscard]] Anchor take_anchor(const std::string& connection_string,
                                 const AnchorOptions& options = {});

/// The anchor as one line of JSON: {"position":"..","events":N,"digest":"..","time":".."}.
[[nodiscard]] std::string to_json(const Anchor& anchor);

/// Parses to_json()'s form (other keys are ignored).
/// Throws: InvalidArgumentError naming what is missing or malformed.
[[nodiscard]] Anchor parse_anchor(std::string_view json);

}  // namespace annals::postgres
