// The relay projection (relay.hpp). It publishes from InProcessProjection::handle(), which the
// runner calls in log order inside a batch whose checkpoint it commits only after every handle()
// of the batch returned: a returned deliver() is an acknowledged message, so the checkpoint never
// passes an unacknowledged event (at least once). A sink's UnavailableError propagates to the
// runner's worker, which treats it as an outage ("reconnecting", backoff, resume from the stored
// checkpoint) rather than a failure of the event.
#include "annals/relay/relay.hpp"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/timestamp.hpp"

namespace annals::relay {
namespace {

// A NATS subject token may not be empty or hold '.', '*', '>' or whitespace.
std::string subject_token(std::string_view text) {
  if (text.empty()) return "_";
  std::string token(text);
  for (char& c : token) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '.' || c == '*' || c == '>' || u <= 0x20 || u == 0x7f) c = '_';
  }
  return token;
}

// The JSON text of a stored value: as stored when the store kept it as text (no parse, no
// dump: the PostgreSQL store returns valid JSON text), else dumped.
std::string json_text(const LazyJson& value) {
  if (const auto text = value.text()) return std::string(*text);
  return value.dump();
}

class RelayProjection final : public projections::InProcessProjection {
 public:
  RelayProjection(std::shared_ptr<RelaySink> sink, RelayOptions options)
      : sink_(std::move(sink)), options_(std::move(options)) {}

  [[nodiscard]] std::string name() const override { return options_.name; }

  // The store filters what it can (one category, the types); handle() checks the rest.
  [[nodiscard]] EventFilter filter() const override {
    EventFilter filter;
    if (options_.selection.categories.size() == 1) {
      filter.category = options_.selection.categories.front();
    }
    filter.event_types = options_.selection.event_types;
    return filter;
  }

  void handle(const RecordedEvent& event) override {
    if (!options_.selection.matches(event)) return;
    std::optional<IntegrationMessage> message =
        options_.mapping ? options_.mapping(event)
                         : std::optional(to_integration_message(event, options_.subject_prefix));
    if (!message) return;
    sink_->deliver(*message);
  }

 private:
  std::shared_ptr<RelaySink> sink_;
  RelayOptions options_;
};

}  // namespace

bool RelaySelection::matches(const RecordedEvent& event) const {
  if (!categories.empty() && std::find(categories.begin(), categories.end(),
                                       event.stream_id.category()) == categories.end()) {
    return false;
  }
  return event_types.empty() ||
         std::find(event_types.begin(), event_types.end(), event.type) != event_types.end();
}

IntegrationMessage to_integration_message(const RecordedEvent& event,
                                          std::string_view subject_prefix) {
  if (event.is_undecodable()) {
    throw CorruptionError("relay: event " + event.id.to_string() + " of stream " +
                          event.stream_id.value() +
                          " could not be decoded from the store: " + event.decode_failure->reason);
  }
  IntegrationMessage message;
  message.subject = subject_token(subject_prefix) + "." +
                    subject_token(event.stream_id.category()) + "." + subject_token(event.type);
  message.id = event.id.to_string();
  const auto position = event.position.to_string();
  const nlohmann::json body = {
      {"id", message.id},
      {"stream", event.stream_id.value()},
      {"version", event.version},
      {"type", event.type},
      {"schema_version", event.schema_version},
      {"position", position},
      {"recorded_at", format_timestamp(event.recorded_at)},
  };
  // The envelope, then data and metadata spliced in as stored text.
  std::string payload = body.dump();
  payload.pop_back();  // the closing brace
  payload +=
      R"(,"data":)" + json_text(event.data) + R"(,"metadata":)" + json_text(event.metadata) + "}";
  message.payload = std::move(payload);
  message.headers = {{"annals-stream", event.stream_id.value()},
                     {"annals-version", std::to_string(event.version)},
                     {"annals-type", event.type},
                     {"annals-position", position}};
  return message;
}

std::shared_ptr<projections::Projection> make_relay(std::shared_ptr<RelaySink> sink,
                                                    RelayOptions options) {
  if (!sink) throw InvalidArgumentError("relay: the sink must not be null");
  projections::validate_projection_name(options.name);
  return std::make_shared<RelayProjection>(std::move(sink), std::move(options));
}

}  // namespace annals::relay
