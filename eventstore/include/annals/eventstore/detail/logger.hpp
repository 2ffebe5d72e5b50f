// Internal to the annals libraries: the one logger helper they all write through. Applications
// do not call it; they register an spdlog logger named "annals" (or set spdlog's default one) to
// receive the library's messages. The library never sets sinks or levels (STYLE 2.8).
//
// spdlog is a private dependency of every annals module: a target that includes this header
// links spdlog::spdlog itself, as each module does.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace annals::detail {

/// The "annals" logger, or spdlog's default one when the application registered none.
/// Thread safety: any thread (spdlog's registry is synchronised).
inline std::shared_ptr<spdlog::logger> logger() {
  auto log = spdlog::get("annals");
  return log ? log : spdlog::default_logger();
}

}  // namespace annals::detail
