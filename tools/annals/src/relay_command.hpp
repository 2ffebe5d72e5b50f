// `annals relay`: runs the outbox relay (annals::relay, docs/relay.md) until SIGTERM or SIGINT,
// publishing the selected events of the global log to NATS JetStream or to a webhook, and
// printing a status line whenever the relay's state changes and every --status-interval.
//
// The arguments are declared here without the relay library, so that the command line parses
// (and the fuzzer runs) in builds without it; relay_command.cpp, which runs the verb, is built
// only with annals::relay (ANNALS_RELAY). Without it the verb fails with exit 1 naming the
// missing packages.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace annals::cli {

/// Arguments of `annals relay`.
struct RelayArgs {
  /// The NATS server(s) (--nats). Default nats://127.0.0.1:4222 unless --webhook is given.
  std::string nats_url = "nats://127.0.0.1:4222";
  /// POST to this http:// endpoint instead of publishing to NATS (--webhook).
  std::optional<std::string> webhook_url = std::nullopt;
  /// The relay's name: key of its checkpoint, lease and dead letters (--name).
  std::string name = "relay";
  /// Subjects are <prefix>.<category>.<type> (--subject-prefix).
  std::string subject_prefix = "annals";
  /// Only these categories / event types (--category, --type; repeatable). Empty: all.
  std::vector<std::string> categories{};
  std::vector<std::string> event_types{};
  /// Create this JetStream stream, taking <prefix>.>, when it is missing (--create-stream).
  std::optional<std::string> create_stream = std::nullopt;
  /// Events per batch (one checkpoint write) (--batch-size, >= 1).
  std::size_t batch_size = 500;
  /// Longest wait for one acknowledgement (--ack-timeout, seconds, > 0).
  double ack_timeout_seconds = 5;
  /// "stop" (default) or "dead-letter": what a message the receiver refuses does (--on-failure).
  std::string on_failure = "stop";
  /// A status line at least this often, besides every change of state (--status-interval,
  /// seconds, > 0).
  double status_interval_seconds = 10;
  /// JSON status lines (--json).
  bool json = false;
  /// The server itself, when --db is a transaction-mode pooler (--session-db): the LISTEN and
  /// presence connections go here, and every store statement is sent unnamed through --db.
  std::optional<std::string> session_db = std::nullopt;
};

/// Runs the relay against the PostgreSQL store at `url` until SIGTERM or SIGINT (blocked in the
/// calling thread before any thread starts, then waited for), writing status lines to `out`.
/// Returns normally after a clean stop (exit 0).
/// Throws: InvalidArgumentError for bad arguments; ExitError (exit 1) when the relay failed for
/// good (state "failed", e.g. a refused message with --on-failure stop); the stores' errors.
void relay(const std::string& url, const RelayArgs& args, std::ostream& out);

}  // namespace annals::cli
