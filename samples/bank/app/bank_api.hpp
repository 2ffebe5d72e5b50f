// The bank's HTTP API (docs/samples/bank.md): commands go through the CommandBus, reads come
// from the read models (optionally after waiting for a position: read-your-writes), history is
// rebuilt from the event store, and every error is JSON {"error": "..."}.
//
//   POST /accounts                         {"account_id","owner"[,"command_id"]} -> 201
//   POST /accounts/{id}/deposit|withdraw   {"amount"[,"command_id"]}             -> 200
//   POST /accounts/{id}/close              [{"command_id"}]                      -> 200
//   DELETE /accounts/{id}                  a closed account's stream is deleted  -> 200; from
//                                          then on every route of the account answers 410
//   GET  /accounts/{id}[?after=P]          the balances read model (P beyond the log's head: 400)
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
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "account.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/personal_data.hpp"
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
  /// True when the progress comes from the stored checkpoints (bank-projector runs the
  /// projections): /metrics then sets the lag gauges itself.
  bool from_checkpoints = false;
};

/// Deepest nesting of objects and arrays a request body may have; deeper bodies get 400 before
/// they are built (the bank's bodies are flat objects; the limit keeps hostile input from
/// costing memory and recursion in whatever walks the parsed value).
inline constexpr int kMaxRequestJsonDepth = 32;

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
  /// POST /accounts/{id}/forget: forgets the owner of the account (PersonalData::forget of
  /// subject "account-<id>", and whatever else holds the name in clear); empty: the route
  /// answers 501.
  std::function<annals::ForgetResult(const std::string& account_id)> forget;
};

/// The HTTP routes over the bank's command and read sides. Every reference must outlive it.
class BankApi {
 public:
  BankApi(annals::CommandBus& bus, annals::Repository<Account>& accounts, annals::EventStore& store,
          BankQueries& queries, ReadModelProgress progress, Metrics& metrics,
          BankApiOptions options);

  /// Installs the routes, the JSON error handler and the payload limit on `server`.
  void mount(httplib::Server& server);

  /// Answers one request in process, without a server or network, as mount()'s server would:
  /// reads req.method, req.path (decoded), req.params and req.body, sets req.matches, and
  /// fills `res` with the same status and JSON (404 without a route, 413 above the body
  /// limit). For tests and the fuzz target. Throws: nothing the handlers throw (answered 500).
  /// Thread safety: as the handlers (any thread).
  void dispatch(httplib::Request& req, httplib::Response& res);

 private:
  struct Route {
    std::string method;   // "GET" or "POST"
    std::string pattern;  // a regular expression over the whole path
    std::function<void(const httplib::Request&, httplib::Response&)> handler;
  };
  // Every route, in the order they are tried.
  std::vector<Route> routes();
  const Route* find_route(httplib::Request& req) const;

  // The commands: POST routes, answered through run_command.
  void open_account(const httplib::Request& req, httplib::Response& res);
  void move_money(CommandKind kind, const httplib::Request& req, httplib::Response& res);
  void close_account(const httplib::Request& req, httplib::Response& res);
  void delete_account(const httplib::Request& req, httplib::Response& res);
  // Throws HttpError(410) when account `id`'s stream is deleted (one round trip).
  void refuse_if_deleted(const std::string& id);
  void forget_owner(const httplib::Request& req, httplib::Response& res);

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
  // Read-your-writes: waits until `projection` has applied everything up to ?after=; a
  // position beyond the log's head gets 400 at once.
  void wait_for_read_model(const httplib::Request& req, std::string_view projection);
  void refuse_beyond_head(const annals::Position& after);

  annals::CommandBus& bus_;
  annals::Repository<Account>& accounts_;
  annals::EventStore& store_;
  BankQueries& queries_;
  ReadModelProgress progress_;
  Metrics& metrics_;
  BankApiOptions options_;
  std::vector<Route> routes_;
  std::vector<std::regex> patterns_;  // routes_[i].pattern, compiled
};

}  // namespace bank
