// Internal: the numbers the event store's append statements and the client agree on, defined
// once. The SQL side uses the same numbers in:
// - annals.append_events (sql/0009_refuse_changed_resend.sql, sql/0014_stream_lifecycle.sql):
//   p_expected takes ExpectedCode values, and the `outcome` column returns AppendOutcome values;
// - sql::kAppendOne (sql.hpp) and the trigger function annals.set_event_chain
//   (sql/0010_cheaper_single_appends.sql): $2 takes an ExpectedCode value, which the statement
//   stores in stream_version as itself when negative, or as kExactBase - n for exactly n.
// Migrations are immutable history, so a change here needs a new migration, never an edit.
#pragma once

#include <cstdint>

#include "annals/eventstore/types.hpp"

namespace annals::postgres::detail {

/// An ExpectedVersion as one bigint: a version n >= 0 means "exactly n"; the kinds without a
/// version are these negative numbers.
struct ExpectedCode {
  static constexpr std::int64_t kAny = -1;           ///< ExpectedVersion::any()
  static constexpr std::int64_t kNoStream = -2;      ///< ExpectedVersion::no_stream()
  static constexpr std::int64_t kStreamExists = -3;  ///< ExpectedVersion::stream_exists()
  /// sql::kAppendOne hands "exactly n" to the trigger as kExactBase - n (-4 for 0).
  static constexpr std::int64_t kExactBase = -4;
};

/// `expected` encoded as annals.append_events and sql::kAppendOne take it.
[[nodiscard]] inline std::int64_t expected_code(const ExpectedVersion& expected) noexcept {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::kAny:
      return ExpectedCode::kAny;
    case ExpectedVersion::Kind::kNoStream:
      return ExpectedCode::kNoStream;
    case ExpectedVersion::Kind::kStreamExists:
      return ExpectedCode::kStreamExists;
    case ExpectedVersion::Kind::kExact:
      return expected.version();
  }
  return ExpectedCode::kAny;
}

/// The `outcome` column of annals.append_events, one row per stream.
enum class AppendOutcome : int {
  kWritten = 0,          ///< the events were written
  kExactResend = 1,      ///< every event was stored by this same append: the original result
  kVersionMismatch = 2,  ///< the expected version did not hold (actual_version says why)
  kIdsElsewhere = 3,     ///< some ids are stored in another stream, or only part of them are
  kChangedResend = 4,    ///< every id is stored here, but one event's content differs
  kStreamDeleted = 5,    ///< the stream is deleted and not reopened (actual_version: tombstone)
};

}  // namespace annals::postgres::detail
