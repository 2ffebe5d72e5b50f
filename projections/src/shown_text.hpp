// Internal: how a name from the user appears in an error message of the projections library.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace annals::projections::detail {

/// `text` between two `quote` characters for an error message: printable ASCII as it is, any
/// other byte (and the quote and '\') as \xNN, cut after `max_bytes` bytes with "...", so that
/// a huge or hostile name makes neither a huge nor a misleading message.
[[nodiscard]] std::string shown_text(std::string_view text, char quote, std::size_t max_bytes);

}  // namespace annals::projections::detail
