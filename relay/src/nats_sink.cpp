// The JetStream sink (nats_sink.hpp) on the NATS C client. One synchronous js_PublishMsg per
// message: the next message leaves only after the previous one was acknowledged, which keeps
// each stream's messages in order across reconnections (an asynchronous window could store a
// later message while an earlier one was lost with the connection, and the re-send would then
// arrive after it).
// Errors: a JetStream API error (the server answered with an error code, e.g. no stream takes the
// subject) is the message's fault and becomes InvalidArgumentError; every other failure (no
// connection, timeout, no responders while JetStream restarts) is UnavailableError.
#include "annals/relay/nats_sink.hpp"

#include <nats/nats.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"

namespace annals::relay {
namespace {

using annals::detail::logger;

std::string status_text(natsStatus status) {
  std::string text = natsStatus_GetText(status);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail != nullptr && *detail != '\0') {
    text += std::string(": ") + detail;
  }
  return text;
}

struct OptionsDeleter {
  void operator()(natsOptions* options) const { natsOptions_Destroy(options); }
};
struct ConnectionDeleter {
  void operator()(natsConnection* connection) const { natsConnection_Destroy(connection); }
};
struct ContextDeleter {
  void operator()(jsCtx* context) const { jsCtx_Destroy(context); }
};
struct MessageDeleter {
  void operator()(natsMsg* message) const { natsMsg_Destroy(message); }
};
struct AckDeleter {
  void operator()(jsPubAck* ack) const { jsPubAck_Destroy(ack); }
};
struct StreamInfoDeleter {
  void operator()(jsStreamInfo* info) const { jsStreamInfo_Destroy(info); }
};

class NatsSink final : public RelaySink {
 public:
  explicit NatsSink(NatsSinkOptions options) : options_(std::move(options)) {}

  ~NatsSink() override {
    context_.reset();
    if (connection_) natsConnection_Close(connection_.get());
    connection_.reset();
  }

  NatsSink(const NatsSink&) = delete;
  NatsSink& operator=(const NatsSink&) = delete;

  void deliver(const IntegrationMessage& message) override {
    std::lock_guard lock(mutex_);
    connect();
    natsMsg* raw_message = nullptr;
    check(natsMsg_Create(&raw_message, message.subject.c_str(), nullptr, message.payload.data(),
                         static_cast<int>(message.payload.size())),
          "creating a message");
    const std::unique_ptr<natsMsg, MessageDeleter> msg(raw_message);
    for (const auto& [name, value] : message.headers) {
      check(natsMsgHeader_Add(msg.get(), name.c_str(), value.c_str()), "setting a header");
    }
    jsPubOptions publish;
    jsPubOptions_Init(&publish);
    publish.MsgId = message.id.c_str();
    publish.MaxWait = options_.ack_timeout.count();
    jsPubAck* raw_ack = nullptr;
    jsErrCode error_code = static_cast<jsErrCode>(0);
    const natsStatus status =
        js_PublishMsg(&raw_ack, context_.get(), msg.get(), &publish, &error_code);
    const std::unique_ptr<jsPubAck, AckDeleter> ack(raw_ack);
    if (status == NATS_OK) return;
    const std::string what = "NATS: publishing " + message.subject + " (id " + message.id +
                             ") to " + options_.url + " failed: " + status_text(status);
    if (static_cast<int>(error_code) != 0) {
      throw InvalidArgumentError(what + " (JetStream error " +
                                 std::to_string(static_cast<int>(error_code)) + ")");
    }
    throw UnavailableError(what);
  }

 private:
  void check(natsStatus status, const char* doing) const {
    if (status != NATS_OK) {
      throw UnavailableError("NATS: " + std::string(doing) + " (" + options_.url +
                             ") failed: " + status_text(status));
    }
  }

  // Connects once; afterwards the client reconnects by itself.
  void connect() {
    if (connection_) return;
    natsOptions* raw_options = nullptr;
    check(natsOptions_Create(&raw_options), "creating options");
    const std::unique_ptr<natsOptions, OptionsDeleter> nats_options(raw_options);
    check(natsOptions_SetURL(nats_options.get(), options_.url.c_str()), "setting the URL");
    check(natsOptions_SetName(nats_options.get(), options_.client_name.c_str()), "naming");
    check(natsOptions_SetTimeout(nats_options.get(), options_.connect_timeout.count()),
          "setting the timeout");
    check(natsOptions_SetAllowReconnect(nats_options.get(), true), "allowing reconnects");
    check(natsOptions_SetMaxReconnect(nats_options.get(), -1), "setting reconnects");
    check(natsOptions_SetReconnectWait(nats_options.get(), options_.reconnect_wait.count()),
          "setting the reconnect wait");
    natsConnection* raw_connection = nullptr;
    check(natsConnection_Connect(&raw_connection, nats_options.get()), "connecting");
    std::unique_ptr<natsConnection, ConnectionDeleter> connection(raw_connection);
    jsOptions js_options;
    check(jsOptions_Init(&js_options), "initialising JetStream options");
    js_options.Wait = options_.ack_timeout.count();
    jsCtx* raw_context = nullptr;
    check(natsConnection_JetStream(&raw_context, connection.get(), &js_options),
          "opening JetStream");
    std::unique_ptr<jsCtx, ContextDeleter> context(raw_context);
    if (options_.stream) ensure_stream(context.get());
    connection_ = std::move(connection);
    context_ = std::move(context);
    logger()->info("annals: relay: connected to NATS at {}", options_.url);
  }

  void ensure_stream(jsCtx* context) const {
    jsStreamInfo* raw_info = nullptr;
    jsErrCode error_code = static_cast<jsErrCode>(0);
    natsStatus status =
        js_GetStreamInfo(&raw_info, context, options_.stream->c_str(), nullptr, &error_code);
    std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw_info);
    if (status == NATS_OK) return;
    if (status != NATS_NOT_FOUND) check(status, "looking up the JetStream stream");
    std::vector<const char*> subjects;
    subjects.reserve(options_.stream_subjects.size());
    for (const auto& subject : options_.stream_subjects) subjects.push_back(subject.c_str());
    jsStreamConfig config;
    check(jsStreamConfig_Init(&config), "initialising the stream's configuration");
    config.Name = options_.stream->c_str();
    config.Subjects = subjects.data();
    config.SubjectsLen = static_cast<int>(subjects.size());
    config.Storage = js_FileStorage;
    raw_info = nullptr;
    status = js_AddStream(&raw_info, context, &config, nullptr, &error_code);
    info.reset(raw_info);
    check(status, "creating the JetStream stream");
    logger()->info("annals: relay: created JetStream stream {}", *options_.stream);
  }

  NatsSinkOptions options_;
  std::mutex mutex_;
  std::unique_ptr<natsConnection, ConnectionDeleter> connection_;
  std::unique_ptr<jsCtx, ContextDeleter> context_;
};

}  // namespace

std::shared_ptr<RelaySink> make_nats_sink(NatsSinkOptions options) {
  if (options.url.empty()) throw InvalidArgumentError("NATS sink: the url must not be empty");
  if (options.stream && options.stream->empty()) {
    throw InvalidArgumentError("NATS sink: the stream name must not be empty");
  }
  if (options.stream && options.stream_subjects.empty()) {
    throw InvalidArgumentError("NATS sink: stream " + *options.stream +
                               " needs at least one subject (stream_subjects)");
  }
  if (options.ack_timeout.count() <= 0 || options.connect_timeout.count() <= 0 ||
      options.reconnect_wait.count() < 0) {
    throw InvalidArgumentError(
        "NATS sink: ack_timeout and connect_timeout must be > 0, "
        "reconnect_wait >= 0");
  }
  return std::make_shared<NatsSink>(std::move(options));
}

}  // namespace annals::relay
