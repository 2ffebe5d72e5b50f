// The relay: publishes selected events of the global log to a broker as integration messages,
// in log order, at least once (docs/relay.md). It is a projection: a ProjectionRunner reads
// the log for it the way it reads for every projection (never skipping an event, from a
// checkpoint kept in a ProjectionStore, under a lease with a fencing token), and commits the
// checkpoint of a batch only after the sink acknowledged every message of it.
//
//   auto sink = annals::relay::make_nats_sink({.url = "nats://127.0.0.1:4222"});
//   annals::projections::ProjectionRunner runner(*store, *projection_store);
//   runner.add(annals::relay::make_relay(sink, {.name = "orders-out",
//                                               .selection = {.categories = {"order"}}}));
//   runner.run_until_signal();
//
// Delivery: one message at a time; the next is sent only once the sink acknowledged the one
// before, so messages of a stream arrive in version order even across broker restarts. After a
// crash, a lost lease or a broker outage, the events after the stored checkpoint are sent again;
// each message carries its event id (IntegrationMessage::id) so the receiver drops the re-sends
// (JetStream: the Nats-Msg-Id header and the stream's duplicate window).
// Broker outages (the sink throws UnavailableError) never count against an event: the runner
// reports the relay "reconnecting", backs off with jitter and resumes from the checkpoint.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"

namespace annals::relay {

/// One message for a broker, made from one event by a RelayMapping.
struct IntegrationMessage {
  /// Where it goes: a NATS subject, or for the webhook the X-Annals-Subject header.
  std::string subject;
  /// Its identity for de-duplication (JetStream's Nats-Msg-Id, the webhook's Idempotency-Key).
  /// The default mapping uses the event id, which stays the same on every re-send.
  std::string id;
  /// The body (bytes; the default mapping writes a JSON object).
  std::string payload;
  /// Extra headers (name, value), sent in this order.
  std::vector<std::pair<std::string, std::string>> headers;

  friend bool operator==(const IntegrationMessage&, const IntegrationMessage&) = default;
};

/// Where the relay delivers messages: a broker, a webhook, a test's recorder.
///
/// Thread safety: the relay calls one sink from one thread at a time.
class RelaySink {
 public:
  RelaySink() = default;
  RelaySink(const RelaySink&) = delete;
  RelaySink& operator=(const RelaySink&) = delete;
  virtual ~RelaySink() = default;

  /// Delivers `message` and returns once the receiver acknowledged it (stored it durably).
  /// Throws: UnavailableError when the receiver cannot be reached or did not answer in time
  /// (the relay backs off and sends again from its checkpoint; the receiver may have the
  /// message already); another annals::Error when the receiver refused this message for good
  /// (the event fails: retried, then parked as a dead letter or the relay stops, per
  /// ProjectionOptions::on_failure).
  virtual void deliver(const IntegrationMessage& message) = 0;
};

/// Which events the relay sends. Empty fields match everything.
struct RelaySelection {
  /// Only streams of these categories (the stream id before its first '-').
  std::vector<std::string> categories;
  /// Only events of these types (stored type names).
  std::vector<std::string> event_types;

  /// True when `event` is selected. Cost: linear in the two lists.
  [[nodiscard]] bool matches(const RecordedEvent& event) const;

  friend bool operator==(const RelaySelection&, const RelaySelection&) = default;
};

/// Turns a selected domain event into an integration message, or returns empty to send nothing
/// for it (the checkpoint still moves past it). Throwing fails the event like a refused message.
/// Must be deterministic for a given event: a re-send must carry the same id.
using RelayMapping = std::function<std::optional<IntegrationMessage>(const RecordedEvent&)>;

/// Settings of a relay.
struct RelayOptions {
  /// The relay's projection name: the key of its checkpoint, lease and dead letters (1 to 100
  /// characters out of [A-Za-z0-9_.-]). Default "relay".
  std::string name = "relay";
  /// Default: every event.
  RelaySelection selection;
  /// The first token of the subjects the default mapping writes. Default "annals".
  std::string subject_prefix = "annals";
  /// Default (null): to_integration_message(event, subject_prefix).
  RelayMapping mapping;
};

/// The default mapping: subject `<prefix>.<category>.<type>` (characters a NATS subject token
/// cannot hold, '.', '*', '>' and whitespace, become '_'), id the event id, headers
/// annals-stream, annals-version, annals-type and annals-position, and as payload the JSON
/// object {"id", "stream", "version", "type", "schema_version", "position", "recorded_at",
/// "data", "metadata"} with data and metadata as stored.
/// Throws: CorruptionError for an event the store could not decode (RecordedEvent::
/// decode_failure). Cost: one copy of the event's JSON text.
[[nodiscard]] IntegrationMessage to_integration_message(const RecordedEvent& event,
                                                        std::string_view subject_prefix);

/// The relay as a projection, for ProjectionRunner::add(). Pass ProjectionOptions with
/// on_failure = OnFailure::kDeadLetter to park refused messages in the projection store's dead
/// letters (`annals dead-letters list/retry`) and go on with the next event.
/// Throws: InvalidArgumentError when `sink` is null or the name is invalid.
[[nodiscard]] std::shared_ptr<projections::Projection> make_relay(std::shared_ptr<RelaySink> sink,
                                                                  RelayOptions options);

}  // namespace annals::relay
