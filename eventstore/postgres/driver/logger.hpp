// Internal: the logger of annals::postgres.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace annals::postgres::detail {

/// The "annals" logger, or spdlog's default one when the application registered none. The
/// library never sets sinks or levels.
inline std::shared_ptr<spdlog::logger> logger() {
  auto log = spdlog::get("annals");
  return log ? log : spdlog::default_logger();
}

}  // namespace annals::postgres::detail
