// Internal: the connection-level timeouts (annals/postgres/connection_options.hpp) written into
// a libpq connection string, and the validation of every timeout option.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "annals/postgres/connection_options.hpp"

namespace annals::postgres::detail {

/// `connection_string` (a postgresql:// URL or "key=value" pairs) with the keywords of
/// `timeouts` added (connect_timeout, keepalives, keepalives_idle, keepalives_interval,
/// keepalives_count, tcp_user_timeout), except those the string already sets and those whose
/// value is zero. A string libpq cannot parse is returned unchanged: connecting then reports
/// the problem. Throws: nothing but std::bad_alloc. Cost: one libpq parse of the string.
[[nodiscard]] std::string with_timeouts(const std::string& connection_string,
                                        const ConnectionTimeouts& timeouts);

/// Throws InvalidArgumentError naming `owner`'s field ("PostgresEventStoreOptions::
/// connection_timeouts.keepalives_count") when a value of `timeouts` is negative.
void validate_timeouts(const ConnectionTimeouts& timeouts, std::string_view owner);

/// Throws InvalidArgumentError naming `owner`::`field` when `value` is negative, or zero and
/// `zero_allowed` is false.
void validate_duration(std::chrono::milliseconds value, std::string_view owner,
                       std::string_view field, bool zero_allowed);

}  // namespace annals::postgres::detail
