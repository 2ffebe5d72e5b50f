#include "service.hpp"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "account.hpp"
#include "annals/eventstore/subject_key_store.hpp"
#include "annals/framework/personal_data.hpp"
#include "annals/framework/snapshot_check.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"
#include "annals/projections/app.hpp"
#include "annals/projections/postgres/open.hpp"
#include "annals/projections/runner.hpp"
#include "bank_api.hpp"
#include "document_read_models.hpp"
#include "metrics.hpp"
#include "worker_queue.hpp"

namespace bank {
namespace {

namespace projections = annals::projections;

sigset_t termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Logs go to stderr (stdout carries the "listening on" line), and to `log_file` too when one is
// given (flushed at every line); the library logs through the logger "annals", which shares the
// sinks. `level`: spdlog's level name ("debug" shows the trace id of every traced event the
// projections apply; docs/observability.md).
void set_up_logging(const std::string& level, const std::string& log_file) {
  if (spdlog::get("annals") != nullptr) return;
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
  if (!log_file.empty()) {
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file));
  }
  const auto parsed = spdlog::level::from_str(level);
  for (const char* name : {"annals", "bank"}) {
    auto logger = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
    logger->set_level(parsed);
    logger->flush_on(parsed);
    if (std::string_view(name) == "annals") {
      spdlog::register_logger(logger);
    } else {
      spdlog::set_default_logger(logger);
    }
  }
}

// Everything both processes share: the App (event store, snapshots, registry, command bus,
// projection store, runner and document reader, annals/projections/app.hpp), the keys of the
// owners' names, and the read models.
struct Backend {
  std::unique_ptr<annals::App> app;
  // Keys of the owners' names (docs/personal-data.md): annals.subject_keys, or in memory.
  std::unique_ptr<annals::SubjectKeyStore> keys;
  std::unique_ptr<annals::PersonalData> personal;
  BankReadModels read_models;
};

// How open_backend makes the App's parts.
struct BackendOptions {
  bool memory = false;
  std::string url;
  std::string migrate_url;
  // Where the event store and the runner report (null: nowhere).
  std::shared_ptr<annals::MetricsSink> metrics;
  projections::RunnerOptions runner;
};

// docs:begin bank-sample-open
std::unique_ptr<annals::App> open_app(const BackendOptions& options) {
  annals::CommandBusOptions bus{.snapshot_policy = annals::SnapshotPolicy::every(100)};
  if (options.memory) {
    return annals::open_in_memory(
        {.metrics = options.metrics, .bus = std::move(bus), .runner = options.runner});
  }
  // The schema of the store, snapshots and projections, applied through the owner's connection
  // when one is given (docs/security.md); the document tables come with the projections
  // (ProjectionStore::prepare), created by the service's own role.
  const auto& owner = options.migrate_url.empty() ? options.url : options.migrate_url;
  for (const auto& applied : annals::postgres::migrate(owner)) {
    spdlog::info("bank: applied migration {}", applied);
  }
  return annals::postgres::open(
      options.url, {.metrics = options.metrics, .bus = std::move(bus), .runner = options.runner});
}
// docs:end

std::unique_ptr<Backend> open_backend(const BackendOptions& options) {
  auto backend = std::make_unique<Backend>();
  backend->app = open_app(options);
  auto& app = *backend->app;
  register_events(app.registry());
  declare_personal_data(app.registry());
  app.registry().validate();
  LogReaches log_reaches;
  if (options.memory) {
    backend->keys = annals::make_in_memory_subject_key_store();
  } else {
    backend->keys =
        annals::postgres::make_postgres_subject_key_store({.connection_string = options.url});
    log_reaches = [&events = app.events()](const annals::Position& position) {
      return std::optional<bool>(annals::postgres::log_reaches(events, position));
    };
  }
  backend->read_models = make_read_models(app.registry(), app.documents(), std::move(log_reaches));
  for (const auto& projection : backend->read_models.projections) {
    app.runner().add(projection, bank_projection_options(projection->name()));
  }
  // docs:begin bank-sample-personal-data-wiring
  backend->personal = std::make_unique<annals::PersonalData>(
      *backend->keys, app.events(),
      annals::PersonalDataOptions{.master_key = annals::MasterKey::from_environment()});
  app.registry().use_personal_data(*backend->personal);
  // docs:end
  return backend;
}

ProjectionProgress progress_of(const projections::ProjectionStatus& s) {
  return ProjectionProgress{.name = s.name,
                            .state = projections::to_string(s.state),
                            .position = s.position.to_string(),
                            .lag_events = s.lag_events,
                            .lag_seconds = s.lag_seconds,
                            .events_applied = s.events_applied,
                            .errors = s.errors};
}

bool is_bank_projection(const std::string& name) {
  return name == kBalancesProjection || name == kTransactionsProjection ||
         name == kDailyTotalsProjection;
}

// Read-your-writes and /health from the runner of this process.
ReadModelProgress progress_of_runner(projections::ProjectionRunner& runner) {
  ReadModelProgress progress;
  progress.wait_for = [&runner](std::string_view name, annals::Position position,
                                std::chrono::milliseconds timeout) {
    return runner.wait_for(std::string(name), position, timeout);
  };
  progress.status = [&runner] {
    std::vector<ProjectionProgress> out;
    for (const auto& s : runner.status()) out.push_back(progress_of(s));
    return out;
  };
  return progress;
}

// Read-your-writes and /health from the checkpoints that bank-projector stores.
ReadModelProgress progress_of_checkpoints(projections::ProjectionStore& projection_store,
                                          annals::EventStore& events) {
  ReadModelProgress progress;
  progress.wait_for = [&projection_store](std::string_view name, annals::Position position,
                                          std::chrono::milliseconds timeout) {
    return projections::wait_for_checkpoint(projection_store, std::string(name), position, timeout);
  };
  progress.status = [&projection_store, &events] {
    const auto head = events.head_position();
    std::vector<ProjectionProgress> out;
    for (const auto& record : projection_store.list()) {
      if (!is_bank_projection(record.name)) continue;
      out.push_back(ProjectionProgress{
          .name = record.name,
          .state = record.state,
          .position = record.checkpoint.to_string(),
          .lag_events = std::max<std::int64_t>(0, head.sequence() - record.checkpoint.sequence()),
          .lag_seconds = 0,
          .events_applied = static_cast<std::uint64_t>(record.events_applied),
          .errors = 0});
    }
    return out;
  };
  progress.from_checkpoints = true;
  return progress;
}

// Starts the projections in this process, or, when bank-projector runs them, creates their
// collections so that reads work at once. Returns where the API learns how far they are.
ReadModelProgress start_projections(const ServiceOptions& options, Backend& backend) {
  auto& app = *backend.app;
  if (options.run_projections) {
    app.runner().start();
    return progress_of_runner(app.runner());
  }
  for (const auto& projection : backend.read_models.projections) {
    app.projection_store().prepare(*projection);
  }
  return progress_of_checkpoints(app.projection_store(), app.events());
}

void configure_server(httplib::Server& server, const ServiceOptions& options, Metrics& metrics) {
  // Replies are written in more than one send(); without TCP_NODELAY, Nagle's algorithm holds
  // the last one back until the client's delayed ACK (about 40 ms per request).
  server.set_tcp_nodelay(true);
  const std::size_t threads = std::max<std::size_t>(1, options.threads);
  const std::size_t max_queued = options.max_queued_requests;
  server.new_task_queue = [threads, max_queued] {
    return new BoundedWorkerQueue(threads, max_queued);
  };
  answer_overload(server, threads, max_queued, metrics);
}

// The port bound (options.port, or a free one when it is 0); -1 when binding failed.
int bind_port(httplib::Server& server, const ServiceOptions& options) {
  if (options.port == 0) return server.bind_to_any_port(options.host);
  return server.bind_to_port(options.host, options.port) ? options.port : -1;
}

// Serves until SIGINT or SIGTERM (or until the server stops on its own); true when it ended
// cleanly. The signals are blocked in every thread (block_termination_signals), so a thread of
// ours takes them with sigwait and stops the server: no work in a signal handler.
bool serve_until_signal(httplib::Server& server) {
  std::atomic<bool> listening_done{false};
  std::atomic<bool> signalled{false};
  std::thread signal_waiter([&] {
    const sigset_t set = termination_signals();
    int signal = 0;
    sigwait(&set, &signal);
    signalled = true;
    if (!listening_done) spdlog::info("bank-service: signal {}, shutting down", signal);
    // stop() has no effect before listen_after_bind() is running: repeat until it returns.
    while (!listening_done) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const bool clean = server.listen_after_bind();
  listening_done = true;
  if (!signalled) kill(getpid(), SIGTERM);  // the server stopped on its own: wake the waiter
  signal_waiter.join();
  return clean;
}

}  // namespace

void block_termination_signals() {
  const sigset_t set = termination_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int run_service(const ServiceOptions& options) {
  set_up_logging(options.log_level, options.log_file);
  // The library's metrics (annals_*) and the service's (bank_*), served at /metrics.
  Metrics metrics;
  std::unique_ptr<Backend> backend;
  try {
    backend =
        open_backend({.memory = options.memory,
                      .url = options.database_url,
                      .migrate_url = options.migrate_url,
                      .metrics = metrics.annals_sink(),
                      .runner = {.owner = options.runner_name, .lease_ttl = options.lease_ttl}});
  } catch (const std::exception& e) {
    spdlog::error("bank-service: cannot open the stores: {}", e.what());
    return 1;
  }
  auto& app = *backend->app;

  // docs:begin bank-sample-wiring
  app.bus().handle<Account>(&OpenAccount::account_id);
  app.bus().handle<Account>(&Deposit::account_id);
  app.bus().handle<Account>(&Withdraw::account_id);
  app.bus().handle<Account>(&CloseAccount::account_id);
  // The auditor's /history: from the events alone, never from a snapshot.
  annals::Repository<Account> accounts(app.events(), app.registry());
  // docs:end

  ReadModelProgress progress;
  try {
    progress = start_projections(options, *backend);
  } catch (const std::exception& e) {
    spdlog::error("bank-service: cannot start the projections: {}", e.what());
    return 1;
  }

  BankApi api(app.bus(), accounts, app.events(), *backend->read_models.queries, progress, metrics,
              {.read_timeout = options.read_timeout,
               .max_body_bytes = options.max_body_bytes,
               .store_kind = options.memory ? "memory" : "postgres",
               .snapshots = &app.snapshots(),
               // POST /accounts/{id}/forget: the owner's key goes, and the account's snapshot
               // (a cache that holds the name in clear) with it.
               .forget = [&backend, &app](const std::string& account_id) {
                 const annals::StreamId stream(std::string(Account::kCategory) + "-" + account_id);
                 auto result = backend->personal->forget(stream.value());
                 app.snapshots().remove(stream);
                 return result;
               }});
  httplib::Server server;
  configure_server(server, options, metrics);
  api.mount(server);
  const int port = bind_port(server, options);
  if (port <= 0) {
    spdlog::error("bank-service: cannot listen on {}:{}", options.host, options.port);
    return 1;
  }
  // Machine-readable: tests and scripts wait for this line.
  std::cout << "listening on " << options.host << ":" << port << std::endl;
  spdlog::info("bank-service: listening on {}:{} ({} store, projections {})", options.host, port,
               options.memory ? "in-memory" : "PostgreSQL",
               options.run_projections ? "in this process" : "in bank-projector");

  const bool clean = serve_until_signal(server);
  app.runner().stop();  // finish or roll back the batch, release the leases
  spdlog::info("bank-service: stopped");
  return clean ? 0 : 1;
}

int check_snapshots(const ServiceOptions& options) {
  set_up_logging(options.log_level, options.log_file);
  try {
    const auto backend = open_backend({.memory = options.memory,
                                       .url = options.database_url,
                                       .migrate_url = options.migrate_url});
    const auto& app = *backend->app;
    const annals::SnapshotCheckReport report =
        annals::check_snapshots<Account>(app.events(), app.registry(), app.snapshots());
    for (const annals::SnapshotMismatch& m : report.mismatches) {
      std::cout << "MISMATCH " << m.stream.value() << " at version " << m.snapshot_version << ": "
                << m.problem << " (loading "
                << (m.ignored == annals::SnapshotIgnored::kNone
                        ? std::string("would use it")
                        : std::string("ignores it: ") + annals::to_string(m.ignored))
                << ")\n  snapshot: " << m.snapshot_state.dump()
                << "\n  events:   " << m.replayed_state.dump() << '\n';
    }
    std::cout << report.streams << " accounts, " << report.snapshots << " snapshots checked ("
              << report.ignored_by_load << " ignored by loads, " << report.other_schema
              << " of another schema version): " << report.mismatches.size() << " mismatches"
              << std::endl;
    return report.ok() ? 0 : kSnapshotMismatchExitCode;
  } catch (const std::exception& e) {
    spdlog::error("bank-service: cannot check the snapshots: {}", e.what());
    return 1;
  }
}

int run_projector(const ProjectorOptions& options) {
  set_up_logging(options.log_level, options.log_file);
  std::unique_ptr<Backend> backend;
  try {
    backend =
        open_backend({.url = options.database_url,
                      .migrate_url = options.migrate_url,
                      .runner = {.owner = options.runner_name, .lease_ttl = options.lease_ttl}});
  } catch (const std::exception& e) {
    spdlog::error("bank-projector: cannot start: {}", e.what());
    return 1;
  }
  auto& runner = backend->app->runner();
  std::cout << "projecting as " << runner.owner() << std::endl;
  spdlog::info("bank-projector: running {} projections as {}",
               backend->read_models.projections.size(), runner.owner());
  runner.run_until_signal();
  spdlog::info("bank-projector: stopped");
  return 0;
}

}  // namespace bank
