// The webhook sink (webhook_sink.hpp) on cpp-httplib's client. Retries inside one delivery are
// for the short hiccups of a receiver (a 503 during a deploy); a longer outage is the relay's to
// wait out (UnavailableError: "reconnecting", backoff, resume from the checkpoint).
#include "annals/relay/webhook_sink.hpp"

#include <httplib.h>

#include <string>
#include <thread>
#include <utility>

#include "annals/eventstore/error.hpp"

namespace annals::relay {
namespace {

// "http://host:port/path" -> ("http://host:port", "/path").
std::pair<std::string, std::string> split_url(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme) || url.size() == kScheme.size()) {
    throw InvalidArgumentError("webhook sink: url '" + url + "' must be http://host[:port][/path]");
  }
  const auto slash = url.find('/', kScheme.size());
  if (slash == std::string::npos) return {url, "/"};
  return {url.substr(0, slash), url.substr(slash)};
}

bool transient(int status) { return status == 408 || status == 429 || status >= 500; }

class WebhookSink final : public RelaySink {
 public:
  explicit WebhookSink(WebhookSinkOptions options)
      : options_(std::move(options)), target_(split_url(options_.url)), client_(target_.first) {
    const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout);
    const auto seconds = static_cast<time_t>(timeout.count() / 1'000'000);
    const auto micros = static_cast<time_t>(timeout.count() % 1'000'000);
    client_.set_connection_timeout(seconds, micros);
    client_.set_read_timeout(seconds, micros);
    client_.set_write_timeout(seconds, micros);
    client_.set_keep_alive(true);
  }

  void deliver(const IntegrationMessage& message) override {
    httplib::Headers headers;
    for (const auto& [name, value] : options_.headers) headers.emplace(name, value);
    headers.emplace("Idempotency-Key", message.id);
    headers.emplace("X-Annals-Subject", message.subject);
    for (const auto& [name, value] : message.headers) headers.emplace(name, value);
    std::string last_failure;
    auto wait = options_.retry_backoff;
    for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
      if (attempt > 1) {
        std::this_thread::sleep_for(wait);  // a pause between requests, not a synchronisation
        wait *= 2;
      }
      const auto result =
          client_.Post(target_.second, headers, message.payload, "application/json");
      if (!result) {
        last_failure = "no answer (" + httplib::to_string(result.error()) + ")";
        continue;
      }
      if (result->status >= 200 && result->status < 300) return;
      last_failure = "status " + std::to_string(result->status);
      if (!transient(result->status)) {
        throw InvalidArgumentError("webhook " + options_.url + " refused message " + message.id +
                                   " (" + message.subject + ") with " + last_failure + ": " +
                                   result->body.substr(0, 200));
      }
    }
    throw UnavailableError("webhook " + options_.url + " did not take message " + message.id +
                           " after " + std::to_string(options_.attempts) +
                           " attempt(s): " + last_failure);
  }

 private:
  WebhookSinkOptions options_;
  std::pair<std::string, std::string> target_;
  httplib::Client client_;
};

}  // namespace

std::shared_ptr<RelaySink> make_webhook_sink(WebhookSinkOptions options) {
  static_cast<void>(split_url(options.url));
  if (options.attempts < 1) throw InvalidArgumentError("webhook sink: attempts must be >= 1");
  if (options.timeout.count() <= 0 || options.retry_backoff.count() < 0) {
    throw InvalidArgumentError("webhook sink: timeout must be > 0 and retry_backoff >= 0");
  }
  return std::make_shared<WebhookSink>(std::move(options));
}

}  // namespace annals::relay
