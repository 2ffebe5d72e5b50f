// The bank's HTTP API (docs/samples/bank.md): commands go through the CommandBus, reads come
// from the read models (optionally after waiting for a position: read-your-writes), history is
// rebuilt from the event store, and every error is JSON {"error": "..."}.
//
//   POST /accounts                         {"account_id","owner"[,"command_id"]} -> 201
//   POST /accounts/{id}/deposit|withdraw   {"amount"[,"command_id"]}             -> 200
//   POST /accounts/{id}/close              [{"command_id"}]                      -> 200
//   GET  /accounts/{id}[?after=P]          the balances read model
//   GET  /accounts/{id}/transactions[?after=P]
//   GET  /accounts/{id}/history[?version=N | ?as_of=RFC3339]  rebuilt from the events
//   GET  /totals/daily[?after=P]
//   GET  /health, GET /metrics
//
// Thread safety: handlers run on the server's threads, many at once; everything they use is
// thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "account.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/repository.hpp"
#include "metrics.hpp"
#include "views.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace bank {

/// How the API learns about the read models' progress: from the runner in this process, or
/// from the projection store when bank-projector runs them elsewhere.
struct ReadModelProgress {
  /// Blocks until projection `name` has applied everything up to `position`, or `timeout`
  /// elapses; true when reached.
  std::function<bool(std::string_view name, annals::Position position,
                     std::chrono::milliseconds timeout)>
      wait_for;
  /// Every projection's progress (for /health and /metrics).
  std::function<std::vector<ProjectionProgress>()> status;
};

struct BankApiOptions {
  /// How long GET ...?after=P waits for the read model before answering 504. Default 5 s.
  std::chrono::milliseconds read_timeout{5000};
  /// Largest request body, in bytes; larger ones get 413. Default 64 KiB.
  std::size_t max_body_bytes = 64 * 1024;
  /// "postgres" or "memory", reported by /health.
  std::string store_kind;
  /// The snapshot store whose counters /metrics shows (annals_snapshots_ignored_total), or
  /// null (then they are not shown). Not owned; must outlive the API.
  const annals::SnapshotStore* snapshots = nullptr;
};

/// The HTTP routes over the bank's command and read sides. Every reference must outlive it.
class BankApi {
 public:
  BankApi(annals::CommandBus& bus, annals::Repository<Account>& accounts, annals::EventStore& store,
          BankQueries& queries, ReadModelProgress progress, Metrics& metrics,
          BankApiOptions options);

  /// Installs the routes, the JSON error handler and the payload limit on `server`.
  void mount(httplib::Server& server);

 private:
  // The commands: POST routes, answered through run_command.
  void open_account(const httplib::Request& req, httplib::Response& res);
  void move_money(CommandKind kind, const httplib::Request& req, httplib::Response& res);
  void close_account(const httplib::Request& req, httplib::Response& res);

  // The queries: GET routes.
  void show_account(const httplib::Request& req, httplib::Response& res);
  void show_transactions(const httplib::Request& req, httplib::Response& res);
  void show_history(const httplib::Request& req, httplib::Response& res);
  void show_daily_totals(const httplib::Request& req, httplib::Response& res);
  void show_health(httplib::Response& res);
  void show_metrics(httplib::Response& res);

  // Runs one command: measures it, maps every failure to a status, records the outcome.
  void run_command(CommandKind kind, httplib::Response& res,
                   const std::function<void(std::string& command_id)>& run);
  // Read-your-writes: waits until `projection` has applied everything up to ?after=.
  void wait_for_read_model(const httplib::Request& req, std::string_view projection);

  annals::CommandBus& bus_;
  annals::Repository<Account>& accounts_;
  annals::EventStore& store_;
  BankQueries& queries_;
  ReadModelProgress progress_;
  Metrics& metrics_;
  BankApiOptions options_;
};

}  // namespace bank
