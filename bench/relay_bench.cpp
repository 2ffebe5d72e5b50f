// relay-bench: what the JetStream relay delivers (docs/relay.md, "Figures"; issue 17).
//
//   relay-bench [--events N] [--rounds R] [--rate R] [--seconds S] [--nats URL] [--json]
//
// - relay_throughput (events/s): a relay starts from the beginning of a log of `events` events
//   (appended beforehand, 100 per append over 16 streams) and publishes every one to a fresh
//   JetStream stream, one acknowledged publish at a time; the time from start() until its
//   checkpoint reaches the head. Median over `rounds` (each round a new relay and stream).
// - relay_latency_p50 / _p99 (ms): writers append single events at `rate` per second for
//   `seconds`; a live relay publishes them and a JetStream push consumer receives them; for
//   each event, the time from the append returning to the consumer receiving its message.
//
// Needs ANNALS_DATABASE_URL (a server; it drops and recreates the database annals_relay_bench
// there, nothing else) and nats-server: a private one is started on a free loopback port with a
// temporary store directory unless --nats names a running server (NATS_SERVER: its path).
// Not run by scripts/bench; build it in release mode (cmake --preset release).
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "annals/relay/nats_sink.hpp"
#include "annals/relay/relay.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
namespace projections = annals::projections;
namespace relay = annals::relay;

struct Options {
  std::int64_t events = 20'000;
  int rounds = 3;
  double rate = 500;
  double seconds = 5;
  std::string nats_url;
  bool json = false;
};

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// A private nats-server -js for the run; SIGTERM and its directory removed at the end.
class PrivateNats {
 public:
  PrivateNats()
      : dir_(std::filesystem::temp_directory_path() /
             ("annals-relay-bench-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    const char* env = std::getenv("NATS_SERVER");
    const std::string path = env != nullptr && *env != '\0' ? env
                             : ::access("/usr/sbin/nats-server", X_OK) == 0
                                 ? "/usr/sbin/nats-server"
                                 : "nats-server";
    const int port = free_port();
    url_ = "nats://127.0.0.1:" + std::to_string(port);
    std::vector<std::string> args = {path,  "-js",
                                     "-a",  "127.0.0.1",
                                     "-p",  std::to_string(port),
                                     "-sd", (dir_ / "js").string(),
                                     "-l",  (dir_ / "nats.log").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid_, path.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start " + path);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      natsConnection* connection = nullptr;
      if (natsConnection_ConnectTo(&connection, url_.c_str()) == NATS_OK) {
        natsConnection_Destroy(connection);
        break;
      }
      if (Clock::now() > deadline) throw std::runtime_error("nats-server did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~PrivateNats() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  PrivateNats(const PrivateNats&) = delete;
  PrivateNats& operator=(const PrivateNats&) = delete;
  [[nodiscard]] const std::string& url() const { return url_; }

 private:
  std::filesystem::path dir_;
  std::string url_;
  pid_t pid_ = -1;
};

std::string scratch_database(const std::string& url) {
  {
    pqxx::connection admin(url);
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP DATABASE IF EXISTS annals_relay_bench");
    tx.exec0("CREATE DATABASE annals_relay_bench");
  }
  const std::string scratch = url.substr(0, url.rfind('/') + 1) + "annals_relay_bench";
  static_cast<void>(annals::postgres::migrate(scratch));
  return scratch;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

std::shared_ptr<projections::Projection> make_bench_relay(const std::string& nats_url,
                                                          const std::string& tag,
                                                          const std::string& category) {
  return relay::make_relay(
      relay::make_nats_sink(
          {.url = nats_url, .stream = "BENCH_" + tag, .stream_subjects = {"bench_" + tag + ".>"}}),
      {.name = "bench-" + tag,
       .selection = {.categories = {category}},
       .subject_prefix = "bench_" + tag});
}

double throughput_round(annals::EventStore& events, projections::ProjectionStore& store,
                        const std::string& nats_url, int round, std::int64_t count) {
  const std::string tag = "t" + std::to_string(round);
  projections::ProjectionRunner runner(events, store);
  runner.add(make_bench_relay(nats_url, tag, "load"));
  const auto head = events.head_position();
  const auto start = Clock::now();
  runner.start();
  if (!runner.wait_for("bench-" + tag, head, std::chrono::minutes(30))) {
    throw std::runtime_error("the relay did not reach the head");
  }
  const std::chrono::duration<double> took = Clock::now() - start;
  runner.stop();
  return static_cast<double>(count) / took.count();
}

// Append-to-consumer latencies in milliseconds.
std::vector<double> latency_run(annals::EventStore& events, projections::ProjectionStore& store,
                                const std::string& nats_url, const Options& options) {
  projections::ProjectionRunner runner(events, store, {.poll_interval = std::chrono::seconds(1)});
  runner.add(make_bench_relay(nats_url, "live", "live"));
  runner.start();
  while (runner.status("bench-live").state != projections::ProjectionState::kLive) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  struct Shared {
    std::mutex mutex;
    std::map<std::string, Clock::time_point> appended;
    std::map<std::string, Clock::time_point> received;
  } shared;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;
  if (natsConnection_ConnectTo(&connection, nats_url.c_str()) != NATS_OK ||
      natsConnection_JetStream(&js, connection, nullptr) != NATS_OK) {
    throw std::runtime_error("cannot connect the consumer");
  }
  // The sink creates its stream on its first message; the consumer needs it before that.
  jsStreamConfig stream_config;
  jsStreamConfig_Init(&stream_config);
  const char* subjects[] = {"bench_live.>"};
  stream_config.Name = "BENCH_live";
  stream_config.Subjects = subjects;
  stream_config.SubjectsLen = 1;
  if (js_AddStream(nullptr, js, &stream_config, nullptr, nullptr) != NATS_OK) {
    throw std::runtime_error("cannot create the stream BENCH_live");
  }
  jsSubOptions sub_options;
  jsSubOptions_Init(&sub_options);
  sub_options.Stream = "BENCH_live";
  sub_options.Config.AckPolicy = js_AckNone;
  const auto on_message = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    const auto now = Clock::now();
    const char* id = "";
    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    auto* state = static_cast<Shared*>(closure);
    {
      std::lock_guard lock(state->mutex);
      state->received.emplace(id, now);
    }
    natsMsg_Destroy(msg);
  };
  if (js_Subscribe(&sub, js, "bench_live.>", on_message, &shared, nullptr, &sub_options, nullptr) !=
      NATS_OK) {
    throw std::runtime_error("cannot subscribe");
  }

  const auto total = static_cast<std::int64_t>(options.rate * options.seconds);
  const auto interval = std::chrono::duration<double>(1.0 / options.rate);
  const auto start = Clock::now();
  for (std::int64_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i)));
    const auto id = annals::EventId::generate();
    static_cast<void>(events.append(annals::StreamId{"live-" + std::to_string(i % 16)},
                                    annals::ExpectedVersion::any(),
                                    {annals::NewEvent{.id = id, .type = "Ticked"}}));
    const auto now = Clock::now();
    std::lock_guard lock(shared.mutex);
    shared.appended.emplace(id.to_string(), now);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    {
      std::lock_guard lock(shared.mutex);
      if (shared.received.size() >= shared.appended.size()) break;
    }
    if (Clock::now() > deadline) throw std::runtime_error("the consumer missed messages");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  runner.stop();

  std::vector<double> millis;
  std::lock_guard lock(shared.mutex);
  for (const auto& [id, at] : shared.appended) {
    const auto it = shared.received.find(id);
    if (it == shared.received.end()) continue;
    const std::chrono::duration<double, std::milli> latency = it->second - at;
    millis.push_back(std::max(0.0, latency.count()));
  }
  return millis;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app("relay-bench: JetStream relay throughput and append-to-consumer latency");
  app.add_option("--events", options.events, "events in the log for the throughput rounds")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{100'000'000}));
  app.add_option("--rounds", options.rounds, "throughput rounds (median)")
      ->check(CLI::Range(1, 100));
  app.add_option("--rate", options.rate, "appends per second during the latency run")
      ->check(CLI::Range(1.0, 100'000.0));
  app.add_option("--seconds", options.seconds, "length of the latency run")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--nats", options.nats_url, "a running NATS server (default: start one)");
  app.add_flag("--json", options.json, "one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  const char* server = std::getenv("ANNALS_DATABASE_URL");
  if (server == nullptr || *server == '\0') {
    std::fputs("relay-bench: set ANNALS_DATABASE_URL\n", stderr);
    return 2;
  }
  try {
    std::unique_ptr<PrivateNats> nats;
    if (options.nats_url.empty()) {
      nats = std::make_unique<PrivateNats>();
      options.nats_url = nats->url();
    }
    const std::string url = scratch_database(server);
    const auto events = annals::postgres::make_postgres_event_store({.connection_string = url});
    const auto store = projections::make_postgres_projection_store({.connection_string = url});
    for (std::int64_t done = 0; done < options.events;) {
      const auto n = std::min<std::int64_t>(100, options.events - done);
      std::vector<annals::NewEvent> batch(static_cast<std::size_t>(n),
                                          annals::NewEvent{.type = "Loaded", .data = {{"n", 1}}});
      static_cast<void>(
          events->append(annals::StreamId{"load-" + std::to_string((done / 100) % 16)},
                         annals::ExpectedVersion::any(), std::move(batch)));
      done += n;
    }
    std::vector<double> rates;
    for (int round = 0; round < options.rounds; ++round) {
      rates.push_back(throughput_round(*events, *store, options.nats_url, round, options.events));
      std::fprintf(stderr, "relay-bench: round %d: %.0f events/s\n", round + 1, rates.back());
    }
    const auto latencies = latency_run(*events, *store, options.nats_url, options);
    const nlohmann::json result = {{"figures",
                                    {{{"name", "relay_throughput"},
                                      {"unit", "events/s"},
                                      {"value", median(rates)},
                                      {"samples", rates}},
                                     {{"name", "relay_latency_p50"},
                                      {"unit", "ms"},
                                      {"value", percentile(latencies, 0.5)},
                                      {"samples", latencies.size()}},
                                     {{"name", "relay_latency_p99"},
                                      {"unit", "ms"},
                                      {"value", percentile(latencies, 0.99)},
                                      {"samples", latencies.size()}}}}};
    if (options.json) {
      std::printf("%s\n", result.dump().c_str());
    } else {
      for (const auto& figure : result["figures"]) {
        std::printf("%-20s %10.2f %s\n", figure["name"].get<std::string>().c_str(),
                    figure["value"].get<double>(), figure["unit"].get<std::string>().c_str());
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "relay-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
