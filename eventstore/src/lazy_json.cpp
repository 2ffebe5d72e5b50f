// LazyJson (see lazy_json.hpp): parse once, on first access, from whichever thread gets there.
//
// The state byte goes kText -> kParsing -> kParsed exactly once. The thread that wins the
// exchange to kParsing parses into value_ and publishes it with a release store; the others
// wait on the byte (C++20 atomic wait: a futex, no spinning) and read value_ after their
// acquire load sees kParsed. If the parse throws (only std::bad_alloc can: stores check the
// text when they read it), the byte goes back to kText and one waiter tries again.
#include "annals/eventstore/lazy_json.hpp"

#include <ostream>

#include "annals/eventstore/detail/lazy_json_access.hpp"
#include "annals/eventstore/detail/stored_json.hpp"

namespace annals {
namespace {

thread_local std::uint64_t parses_on_this_thread = 0;

}  // namespace

LazyJson::LazyJson(const LazyJson& other) : text_(other.text_), has_text_(other.has_text_) {
  if (other.state_.load(std::memory_order_acquire) == kParsed) {
    value_ = other.value_;
    state_.store(kParsed, std::memory_order_relaxed);
  } else {
    state_.store(kText, std::memory_order_relaxed);
  }
}

LazyJson::LazyJson(LazyJson&& other) noexcept
    : text_(std::move(other.text_)),
      value_(std::move(other.value_)),
      has_text_(other.has_text_),
      state_(other.state_.load(std::memory_order_relaxed)) {
  other.has_text_ = false;
  other.value_ = nullptr;
  other.state_.store(kParsed, std::memory_order_relaxed);
}

LazyJson& LazyJson::operator=(const LazyJson& other) {
  if (this != &other) *this = LazyJson(other);
  return *this;
}

LazyJson& LazyJson::operator=(LazyJson&& other) noexcept {
  if (this == &other) return *this;
  text_ = std::move(other.text_);
  value_ = std::move(other.value_);
  has_text_ = other.has_text_;
  state_.store(other.state_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  other.has_text_ = false;
  other.value_ = nullptr;
  other.state_.store(kParsed, std::memory_order_relaxed);
  return *this;
}

nlohmann::json& LazyJson::mutable_json() {
  (void)get_json();
  has_text_ = false;
  std::string().swap(text_);
  return value_;
}

const nlohmann::json& LazyJson::parse_once() const {
  for (;;) {
    std::uint8_t seen = state_.load(std::memory_order_acquire);
    if (seen == kParsed) return value_;
    if (seen == kText &&
        state_.compare_exchange_strong(seen, kParsing, std::memory_order_acquire)) {
      try {
        value_ = detail::parse_stored_json(text_);
      } catch (...) {
        state_.store(kText, std::memory_order_release);
        state_.notify_all();
        throw;
      }
      ++parses_on_this_thread;
      state_.store(kParsed, std::memory_order_release);
      state_.notify_all();
      return value_;
    }
    if (seen == kParsing) state_.wait(kParsing, std::memory_order_acquire);
  }
}

const nlohmann::json& LazyJson::null_value() {
  static const nlohmann::json kNull;
  return kNull;
}

bool operator==(const LazyJson& a, const LazyJson& b) {
  if (a.has_text_ && b.has_text_ && a.text_ == b.text_) return true;
  return a.get_json() == b.get_json();
}

std::ostream& operator<<(std::ostream& out, const LazyJson& value) {
  if (const auto text = value.text()) return out << *text;
  return out << value.get_json();
}

namespace detail {

std::uint64_t LazyJsonAccess::parses_on_this_thread() noexcept {
  return annals::parses_on_this_thread;
}

}  // namespace detail
}  // namespace annals
