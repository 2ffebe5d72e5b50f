// A RelaySink that POSTs each message to an HTTP endpoint (a webhook), for receivers that are
// not brokers. It shows the relay's seam: nothing of the relay assumes NATS.
//
//   auto sink = annals::relay::make_webhook_sink({.url = "http://127.0.0.1:8080/events"});
//   runner.add(annals::relay::make_relay(sink, {.name = "hooks"}),
//              {.on_failure = annals::projections::OnFailure::kDeadLetter});
//
// The request: POST with the message's payload as body (Content-Type application/json), its
// id as Idempotency-Key, its subject as X-Annals-Subject and its headers as they are. Any 2xx
// answer acknowledges the message. A 408, 429, 5xx, or no answer, is retried `attempts` times
// with a doubling wait, then reported as UnavailableError (the relay backs off and sends again
// from its checkpoint). Any other answer (4xx: the receiver refuses this message) is an
// InvalidArgumentError naming the status: the relay retries the event and then, with
// OnFailure::kDeadLetter, parks it in the projection store's dead letters.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "annals/relay/relay.hpp"

namespace annals::relay {

/// Settings of the webhook sink.
struct WebhookSinkOptions {
  /// The endpoint: http://host[:port][/path]. Required.
  std::string url;
  /// Longest wait to connect, and for the answer to one request. Default 5 s.
  std::chrono::milliseconds timeout{5000};
  /// Requests per delivery before a transient failure is reported (>= 1). Default 3.
  int attempts = 3;
  /// Wait before the second request; doubles for each further one. Default 100 ms.
  std::chrono::milliseconds retry_backoff{100};
  /// Headers added to every request (e.g. an Authorization), before the message's own.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// A sink posting to `options.url`. Creating it does no I/O.
/// Throws: InvalidArgumentError (a url that is not http://host..., attempts < 1, timeouts
/// <= 0). Thread safety: as RelaySink.
[[nodiscard]] std::shared_ptr<RelaySink> make_webhook_sink(WebhookSinkOptions options);

}  // namespace annals::relay
