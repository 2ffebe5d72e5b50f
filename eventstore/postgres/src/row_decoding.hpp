// Internal: turning rows of the event store's read statements into RecordedEvents.
#pragma once

#include "annals/eventstore/types.hpp"
#include "libpq_connection.hpp"

namespace annals::postgres::detail {

/// One row of ANNALS_EVENT_COLUMNS (sql.hpp) in binary format; none of them is NULL.
using EventRow = LibpqConnection::Row;

/// Decodes `row`. The columns whose types guarantee their form are read here from their binary
/// form (a field of the wrong size is a CorruptionError: the row cannot even be placed in the
/// log); the rest is
/// decode_stored_event's, which marks a row it cannot decode instead of throwing.
/// `previous` (may be null): the event decoded just before (see decode_stored_event).
/// Throws: CorruptionError.
[[nodiscard]] RecordedEvent decode_event(const EventRow& row, const RecordedEvent* previous);

}  // namespace annals::postgres::detail
