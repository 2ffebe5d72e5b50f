#include "progress_line.hpp"

#include <algorithm>
#include <utility>

namespace annals::cli {

ProgressLine::ProgressLine(std::ostream& out, bool enabled, std::string label)
    : out_(out), enabled_(enabled), label_(std::move(label)) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(std::int64_t events, std::optional<int> percent) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool complete = percent && *percent >= 100;
  if (!complete && last_drawn_ && now - *last_drawn_ < std::chrono::milliseconds(100)) return;
  last_drawn_ = now;
  draw(events, percent);
}

void ProgressLine::draw(std::int64_t events, std::optional<int> percent) {
  out_ << '\r' << label_ << ' ';
  if (percent) {
    constexpr int kWidth = 30;
    const int done = std::clamp(*percent, 0, 100);
    const int filled = done * kWidth / 100;
    out_ << '[' << std::string(static_cast<std::size_t>(filled), '#')
         << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] " << done << "% ("
         << events << " events)";
  } else {
    const auto seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    out_ << events << " events";
    if (seconds > 0.5)
      out_ << " (" << static_cast<std::int64_t>(static_cast<double>(events) / seconds) << "/s)";
  }
  out_ << "   " << std::flush;  // covers the tail of a longer earlier drawing
  drawn_ = true;
}

void ProgressLine::finish() {
  if (drawn_) out_ << '\n' << std::flush;
  drawn_ = false;
}

}  // namespace annals::cli
