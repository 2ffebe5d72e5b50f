// `annals relay` (relay_command.hpp): a ProjectionRunner with one projection, the relay, over
// the PostgreSQL stores; the runner's status is what the verb prints. Built only with
// annals::relay.
#include "relay_command.hpp"

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "annals/relay/nats_sink.hpp"
#include "annals/relay/relay.hpp"
#include "annals/relay/webhook_sink.hpp"
#include "exit_code.hpp"

namespace annals::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds to_millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

void validate(const RelayArgs& args) {
  if (args.batch_size < 1) throw InvalidArgumentError("--batch-size must be >= 1");
  if (!(args.ack_timeout_seconds > 0)) throw InvalidArgumentError("--ack-timeout must be > 0");
  if (!(args.status_interval_seconds > 0)) {
    throw InvalidArgumentError("--status-interval must be > 0");
  }
  if (args.on_failure != "stop" && args.on_failure != "dead-letter") {
    throw InvalidArgumentError("--on-failure must be stop or dead-letter, not '" + args.on_failure +
                               "'");
  }
  if (args.webhook_url && args.create_stream) {
    throw InvalidArgumentError("--create-stream is for NATS, not with --webhook");
  }
  if (args.subject_prefix.empty()) throw InvalidArgumentError("--subject-prefix must not be empty");
}

std::shared_ptr<relay::RelaySink> make_sink(const RelayArgs& args) {
  if (args.webhook_url) {
    return relay::make_webhook_sink(
        {.url = *args.webhook_url, .timeout = to_millis(args.ack_timeout_seconds)});
  }
  relay::NatsSinkOptions options;
  options.url = args.nats_url;
  options.ack_timeout = to_millis(args.ack_timeout_seconds);
  if (args.create_stream) {
    options.stream = *args.create_stream;
    options.stream_subjects = {args.subject_prefix + ".>"};
  }
  return relay::make_nats_sink(std::move(options));
}

// One status line: JSON (keys in this order; docs/cli.md) or text.
std::string status_line(const projections::ProjectionStatus& status, bool json) {
  if (json) {
    nlohmann::ordered_json line = {
        {"relay", status.name},
        {"state", projections::to_string(status.state)},
        {"position", status.position.to_string()},
        {"head", status.head.to_string()},
        {"lag_events", status.lag_events},
        {"lag_seconds", status.lag_seconds},
        {"events_per_second", status.events_per_second},
        {"events_processed", status.events_applied},
        {"errors", status.errors},
        {"dead_letters", status.dead_letters},
        {"last_error", status.last_error ? nlohmann::ordered_json(*status.last_error)
                                         : nlohmann::ordered_json(nullptr)},
    };
    return line.dump();
  }
  std::ostringstream text;
  text << "relay " << status.name << ": " << projections::to_string(status.state) << ", position "
       << status.position.to_string() << ", lag " << status.lag_events << " events ("
       << status.lag_seconds << " s), " << status.events_per_second << " events/s, "
       << status.events_applied << " processed";
  if (status.last_error) text << ", last error: " << *status.last_error;
  return text.str();
}

}  // namespace

void relay(const std::string& url, const RelayArgs& args, std::ostream& out) {
  validate(args);
  // Block the stop signals before any thread starts (threads inherit the mask), then wait for
  // them with sigtimedwait between status lines.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  relay::RelayOptions options;
  options.name = args.name;
  options.selection = {.categories = args.categories, .event_types = args.event_types};
  options.subject_prefix = args.subject_prefix;
  auto projection = relay::make_relay(make_sink(args), std::move(options));

  // Behind a transaction pooler (--session-db): statements unnamed through it, sessions direct.
  const bool pooled = args.session_db.has_value();
  postgres::PostgresEventStoreOptions event_options;
  event_options.connection_string = url;
  event_options.pool_size = 2;  // the runner reads ahead on a second connection
  event_options.session_connection_string = args.session_db.value_or("");
  event_options.prepare_statements = !pooled;
  const auto events = postgres::make_postgres_event_store(std::move(event_options));
  projections::PostgresProjectionStoreOptions store_options;
  store_options.connection_string = url;
  store_options.pool_size = 3;  // batches, lease renewals, status reports
  store_options.session_connection_string = args.session_db.value_or("");
  store_options.prepare_statements = !pooled;
  const auto store = projections::make_postgres_projection_store(std::move(store_options));

  projections::ProjectionRunner runner(*events, *store);
  runner.add(std::move(projection),
             {.batch_size = args.batch_size,
              .on_failure = args.on_failure == "dead-letter" ? projections::OnFailure::kDeadLetter
                                                             : projections::OnFailure::kStop});
  runner.start();

  const auto interval = to_millis(args.status_interval_seconds);
  auto next_line = Clock::now();
  auto last_state = projections::ProjectionState::kStarting;
  bool printed = false;
  for (;;) {
    const auto status = runner.status(args.name);
    if (!printed || status.state != last_state || Clock::now() >= next_line) {
      out << status_line(status, args.json) << std::endl;
      printed = true;
      last_state = status.state;
      next_line = Clock::now() + interval;
    }
    if (status.state == projections::ProjectionState::kFailed) {
      runner.stop();
      throw ExitError(ExitCode::kError,
                      "relay " + args.name + " failed: " + status.last_error.value_or("?"));
    }
    const timespec wait{.tv_sec = 0, .tv_nsec = 200'000'000};
    if (sigtimedwait(&stop_signals, nullptr, &wait) > 0) break;
  }
  runner.stop();
  out << status_line(runner.status(args.name), args.json) << std::endl;
}

}  // namespace annals::cli
