// Private: the logger of annals::projections.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace annals::projections::detail {

/// The "annals" logger, or spdlog's default one when the application registered none. The
/// library never sets sinks or levels (STYLE 2.8).
inline std::shared_ptr<spdlog::logger> logger() {
  auto log = spdlog::get("annals");
  return log ? log : spdlog::default_logger();
}

}  // namespace annals::projections::detail
