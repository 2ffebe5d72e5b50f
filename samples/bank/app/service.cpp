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
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/eventstore/subject_key_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/personal_data.hpp"
#include "annals/framework/snapshot_check.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "bank_api.hpp"
#include "in_memory_read_models.hpp"
#include "metrics.hpp"
#include "postgres_read_models.hpp"
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

// Everything both processes share: the stores and the read models.
struct Backend {
  annals::EventRegistry registry;
  std::unique_ptr<annals::EventStore> events;
  // Keys of the owners' names (docs/personal-data.md): annals.subject_keys, or in memory.
  std::unique_ptr<annals::SubjectKeyStore> keys;
  std::unique_ptr<annals::PersonalData> personal;
  std::unique_ptr<annals::SnapshotStore> snapshots;
  std::unique_ptr<projections::ProjectionStore> projection_store;
  BankReadModels read_models;
};

// `metrics`: where the event store reports (null: nowhere).
std::unique_ptr<Backend> open_backend(
    bool memory, const std::string& url, const std::string& migrate_url,
    const std::shared_ptr<annals::MetricsSink>& metrics = nullptr) {
  auto backend = std::make_unique<Backend>();
  register_events(backend->registry);
  declare_personal_data(backend->registry);
  backend->registry.validate();
  if (memory) {
    backend->events = annals::make_in_memory_event_store({.metrics = metrics});
    backend->snapshots = annals::make_in_memory_snapshot_store(*backend->events);
    backend->projection_store = projections::make_in_memory_projection_store();
    backend->keys = annals::make_in_memory_subject_key_store();
    backend->read_models = make_in_memory_read_models(backend->registry);
  } else {
    // The schema of the store, snapshots and projections, applied through the owner's
    // connection when one is given (docs/security.md); read-model tables come with the
    // projections (ProjectionStore::prepare), created by the service's own role.
    for (const auto& applied : annals::postgres::migrate(migrate_url.empty() ? url : migrate_url)) {
      spdlog::info("bank: applied migration {}", applied);
    }
    backend->events =
        annals::postgres::make_postgres_event_store({.connection_string = url, .metrics = metrics});
    backend->snapshots = annals::postgres::make_postgres_snapshot_store({.connection_string = url});
    backend->projection_store =
        projections::make_postgres_projection_store({.connection_string = url});
    backend->keys = annals::postgres::make_postgres_subject_key_store({.connection_string = url});
    backend->read_models = make_postgres_read_models(backend->registry, url);
  }
  // docs:begin bank-sample-personal-data-wiring
  backend->personal = std::make_unique<annals::PersonalData>(
      *backend->keys, *backend->events,
      annals::PersonalDataOptions{.master_key = annals::MasterKey::from_environment()});
  backend->registry.use_personal_data(*backend->personal);
  // docs:end
  return backend;
}

std::unique_ptr<projections::ProjectionRunner> start_runner(
    Backend& backend, const std::string& runner_name, std::chrono::milliseconds lease_ttl,
    const std::shared_ptr<annals::MetricsSink>& metrics = nullptr) {
  projections::RunnerOptions options{
      .owner = runner_name, .lease_ttl = lease_ttl, .metrics = metrics};
  auto runner = std::make_unique<projections::ProjectionRunner>(
      *backend.events, *backend.projection_store, std::move(options));
  for (const auto& projection : backend.read_models.projections) {
    runner->add(projection, bank_projection_options(projection->name()));
  }
  return runner;
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

// Starts the projections in this process (then `runner` holds them), or, when bank-projector
// runs them, creates their tables so that reads work at once. Returns where the API learns
// how far they are.
ReadModelProgress start_projections(const ServiceOptions& options, Backend& backend,
                                    std::unique_ptr<projections::ProjectionRunner>& runner,
                                    const std::shared_ptr<annals::MetricsSink>& metrics) {
  if (options.run_projections) {
    runner = start_runner(backend, options.runner_name, options.lease_ttl, metrics);
    runner->start();
    return progress_of_runner(*runner);
  }
  for (const auto& projection : backend.read_models.projections) {
    backend.projection_store->prepare(*projection);
  }
  return progress_of_checkpoints(*backend.projection_store, *backend.events);
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
    backend = open_backend(options.memory, options.database_url, options.migrate_url,
                           metrics.annals_sink());
  } catch (const std::exception& e) {
    spdlog::error("bank-service: cannot open the stores: {}", e.what());
    return 1;
  }
  auto& events = *backend->events;

  // docs:begin bank-sample-wiring
  annals::CommandBus bus(events, backend->registry,
                         {.snapshots = backend->snapshots.get(),
                          .snapshot_policy = annals::SnapshotPolicy::every(100)});
  bus.handle<Account>(&OpenAccount::account_id);
  bus.handle<Account>(&Deposit::account_id);
  bus.handle<Account>(&Withdraw::account_id);
  bus.handle<Account>(&CloseAccount::account_id);
  // The auditor's /history: from the events alone, never from a snapshot.
  annals::Repository<Account> accounts(events, backend->registry);
  // docs:end

  std::unique_ptr<projections::ProjectionRunner> runner;
  ReadModelProgress progress;
  try {
    progress = start_projections(options, *backend, runner, metrics.annals_sink());
  } catch (const std::exception& e) {
    spdlog::error("bank-service: cannot start the projections: {}", e.what());
    return 1;
  }

  BankApi api(bus, accounts, events, *backend->read_models.queries, progress, metrics,
              {.read_timeout = options.read_timeout,
               .max_body_bytes = options.max_body_bytes,
               .store_kind = options.memory ? "memory" : "postgres",
               .snapshots = backend->snapshots.get(),
               // POST /accounts/{id}/forget: the owner's key goes, and the account's snapshot
               // (a cache that holds the name in clear) with it.
               .forget = [&backend](const std::string& account_id) {
                 const annals::StreamId stream(std::string(Account::kCategory) + "-" + account_id);
                 auto result = backend->personal->forget(stream.value());
                 backend->snapshots->remove(stream);
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
  if (runner) runner->stop();  // finish or roll back the batch, release the leases
  spdlog::info("bank-service: stopped");
  return clean ? 0 : 1;
}

int check_snapshots(const ServiceOptions& options) {
  set_up_logging(options.log_level, options.log_file);
  try {
    const auto backend = open_backend(options.memory, options.database_url, options.migrate_url);
    const annals::SnapshotCheckReport report =
        annals::check_snapshots<Account>(*backend->events, backend->registry, *backend->snapshots);
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
  std::unique_ptr<projections::ProjectionRunner> runner;
  try {
    backend = open_backend(false, options.database_url, options.migrate_url);
    runner = start_runner(*backend, options.runner_name, options.lease_ttl);
  } catch (const std::exception& e) {
    spdlog::error("bank-projector: cannot start: {}", e.what());
    return 1;
  }
  std::cout << "projecting as " << runner->owner() << std::endl;
  spdlog::info("bank-projector: running {} projections as {}",
               backend->read_models.projections.size(), runner->owner());
  runner->run_until_signal();
  spdlog::info("bank-projector: stopped");
  return 0;
}

}  // namespace bank
