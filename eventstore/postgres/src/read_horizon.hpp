// Internal: the oldest running transaction, which holds back the readers of the global log
// (ARCHITECTURE decision 5): read_horizon() and the subscriptions' periodic warning.
#pragma once

#include "annals/postgres/postgres_event_store.hpp"
#include "libpq_connection.hpp"

namespace annals::postgres::detail {

/// The read horizon as seen from `connection`. Cost: one round trip.
/// Throws: as LibpqConnection::exec does; CorruptionError when a number is unreadable.
[[nodiscard]] ReadHorizon query_read_horizon(LibpqConnection& connection);

}  // namespace annals::postgres::detail
