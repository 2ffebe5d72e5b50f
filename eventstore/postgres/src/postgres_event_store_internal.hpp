// Internal: what tests may observe of a PostgresEventStore beyond the EventStore interface.
#pragma once

#include <cstddef>

#include "annals/eventstore/event_store.hpp"

namespace annals::postgres::detail {

/// Single-event appends of `store` waiting to be sent as part of a group (see GroupCommit).
/// Requires: `store` was made by make_postgres_event_store.
[[nodiscard]] std::size_t appends_waiting_for_group_for_testing(EventStore& store);

}  // namespace annals::postgres::detail
