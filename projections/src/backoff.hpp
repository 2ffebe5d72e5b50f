// Private: the waits between attempts of a projection worker (failed events, an unavailable
// store): the libraries' one capped exponential backoff with "equal jitter"
// (annals/eventstore/detail/backoff.hpp), shared with subscriptions and LISTEN connections.
#pragma once

#include "annals/eventstore/detail/backoff.hpp"

namespace annals::projections::detail {

using Backoff = annals::detail::Backoff;

}  // namespace annals::projections::detail
