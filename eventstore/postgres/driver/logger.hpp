// Internal: the logger of annals::postgres.
#pragma once

#include "annals/eventstore/detail/logger.hpp"

namespace annals::postgres::detail {

/// The library's one logger helper (annals/eventstore/detail/logger.hpp).
using annals::detail::logger;

}  // namespace annals::postgres::detail
