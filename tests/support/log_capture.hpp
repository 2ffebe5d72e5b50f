// Test support: captures what the library logs to its spdlog logger "annals", one
// "level|message" per line, for tests that check what is logged and how often.
//
// Thread safety: the logger may be written from any thread; count() and text() flush first.
// Only one LogCapture may exist at a time (it replaces the registered "annals" logger).
#pragma once

#include <memory>
#include <sstream>
#include <string>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace annals::testing {

class LogCapture {
 public:
  LogCapture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(output_);
    sink->set_pattern("%l|%v");
    logger_ = std::make_shared<spdlog::logger>("annals", sink);
    logger_->set_level(spdlog::level::trace);
    spdlog::drop("annals");
    spdlog::register_logger(logger_);
  }
  ~LogCapture() { spdlog::drop("annals"); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  /// Lines at `level` ("warning", "info", ...) that contain `text`.
  int count(const std::string& level, const std::string& text) {
    logger_->flush();
    std::istringstream lines(output_.str());
    int n = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(level + "|", 0) == 0 && line.find(text) != std::string::npos) ++n;
    }
    return n;
  }

  /// Everything captured so far.
  std::string text() {
    logger_->flush();
    return output_.str();
  }

 private:
  std::ostringstream output_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace annals::testing
