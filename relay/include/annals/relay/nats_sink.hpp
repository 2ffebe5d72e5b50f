// A RelaySink that publishes to NATS JetStream (libnats-dev, the NATS C client): each message is
// published with its id as Nats-Msg-Id and the sink waits for the stream's acknowledgement, so
// JetStream's duplicate window drops what the relay sends again after a crash or an outage.
//
//   auto sink = annals::relay::make_nats_sink({.url = "nats://127.0.0.1:4222",
//                                              .stream = "ANNALS",
//                                              .stream_subjects = {"annals.>"}});
//
// Connection: made on the first delivery and kept; the client reconnects by itself after the
// server went away (without limit, every reconnect_wait). While it is not connected, or when
// the acknowledgement does not come within ack_timeout, deliver() throws UnavailableError and the
// relay backs off (docs/relay.md).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/relay/relay.hpp"

namespace annals::relay {

/// Settings of the NATS JetStream sink.
struct NatsSinkOptions {
  /// The server(s), comma-separated NATS URLs. Default "nats://127.0.0.1:4222".
  std::string url = "nats://127.0.0.1:4222";
  /// When set, the JetStream stream the sink makes sure exists (created, file storage, with
  /// stream_subjects, when missing; an existing one is used as it is). Default: none (the
  /// messages' subjects must belong to a stream created by the operator).
  std::optional<std::string> stream;
  /// The subjects of the stream created for `stream`. Default: none, which with `stream` set is
  /// an InvalidArgumentError.
  std::vector<std::string> stream_subjects;
  /// Longest wait for the stream's acknowledgement of one message. Default 2 s.
  std::chrono::milliseconds ack_timeout{2000};
  /// Longest wait for the connection to the server. Default 2 s.
  std::chrono::milliseconds connect_timeout{2000};
  /// Wait between the client's reconnection attempts after the server went away. Default 100 ms.
  std::chrono::milliseconds reconnect_wait{100};
  /// The connection's name, as the server's monitoring shows it. Default "annals-relay".
  std::string client_name = "annals-relay";
};

/// A sink publishing to JetStream. Connects lazily: creating it does no I/O.
/// Throws: InvalidArgumentError (empty url, `stream` without subjects).
/// Thread safety: as RelaySink (one caller at a time).
[[nodiscard]] std::shared_ptr<RelaySink> make_nats_sink(NatsSinkOptions options);

}  // namespace annals::relay
