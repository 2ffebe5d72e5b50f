// The JetStream relay against a real `nats-server -js` started by the test on a free loopback
// port with its own store directory, over the PostgreSQL stores (issue 17, "Integration events
// out through a broker"): the broker killed with SIGKILL mid-stream and restarted, and the relay
// (`annals relay`, a child process) frozen mid-batch and killed. Each time a JetStream consumer
// then sees every selected event exactly once, and each stream's events in version order.
// Waiting is bounded polling of a condition (the stream's message count, the relay's state or
// checkpoint), never a sleep.
#include <nats/nats.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "annals/relay/nats_sink.hpp"
#include "annals/relay/relay.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "test_database.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::testing::ChildProcess;
using annals::testing::eventually;
using annals::testing::test_database_url;
namespace projections = annals::projections;
namespace relay = annals::relay;
using namespace std::chrono_literals;

constexpr const char* kStream = "ORDERS";

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// nats-server (Debian installs it in /usr/sbin, which is not on every PATH); ChildProcess
// execs a path. NATS_SERVER overrides it.
std::string server_path() {
  if (const char* path = std::getenv("NATS_SERVER"); path != nullptr && *path != '\0') return path;
  for (const char* candidate : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return "nats-server";
}

// A private nats-server with JetStream: one port and store directory for its whole life, so
// that a restart finds the stream (and its duplicate window) it had before the SIGKILL.
class NatsServer {
 public:
  NatsServer()
      : port_(free_port()),
        dir_(std::filesystem::temp_directory_path() /
             ("annals-nats-" + annals::testing::random_hex(12))) {
    std::filesystem::create_directories(dir_);
    start();
  }
  ~NatsServer() {
    process_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  void start() {
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{server_path(), "-js", "-a", "127.0.0.1", "-p",
                                 std::to_string(port_), "-sd", (dir_ / "js").string(), "-l",
                                 (dir_ / "nats.log").string()},
        "nats");
  }
  void kill() {
    process_->kill(SIGKILL);
    process_->wait();
    process_.reset();
  }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> process_;
};

// The test's own JetStream client: a fresh connection per question, so that a broker restart
// never leaves it waiting on the client's reconnection.
class Checker {
 public:
  Checker(std::string url, std::string subjects)
      : url_(std::move(url)), subjects_(std::move(subjects)) {}

  // Messages stored in the stream, or empty while the server or the stream is not there.
  [[nodiscard]] std::optional<std::uint64_t> stored() const {
    std::optional<std::uint64_t> count;
    with_js([&](jsCtx* js) {
      jsStreamInfo* info = nullptr;
      if (js_GetStreamInfo(&info, js, kStream, nullptr, nullptr) == NATS_OK) {
        count = info->State.Msgs;
        jsStreamInfo_Destroy(info);
      }
    });
    return count;
  }

  // The log position (annals-position header) of the newest message in the stream, if any.
  [[nodiscard]] std::optional<annals::Position> last_position() const {
    std::optional<annals::Position> position;
    with_js([&](jsCtx* js) {
      jsStreamInfo* info = nullptr;
      if (js_GetStreamInfo(&info, js, kStream, nullptr, nullptr) != NATS_OK) return;
      const auto last = info->State.LastSeq;
      jsStreamInfo_Destroy(info);
      natsMsg* msg = nullptr;
      if (last == 0 || js_GetMsg(&msg, js, kStream, last, nullptr, nullptr) != NATS_OK) return;
      const char* text = nullptr;
      if (natsMsgHeader_Get(msg, "annals-position", &text) == NATS_OK) {
        position = annals::Position::parse(text);
      }
      natsMsg_Destroy(msg);
    });
    return position;
  }

  struct Seen {
    std::string msg_id;
    std::string event_id;
    std::string stream;
    std::int64_t version;
  };

  // Every message of the stream, read by a new durable pull consumer from the start.
  [[nodiscard]] std::vector<Seen> read_all(std::size_t expected) const {
    std::vector<Seen> seen;
    with_js([&](jsCtx* js) {
      jsSubOptions options;
      jsSubOptions_Init(&options);
      options.Stream = kStream;
      const std::string durable = "check-" + annals::testing::random_hex(8);
      natsSubscription* sub = nullptr;
      ASSERT_EQ(js_PullSubscribe(&sub, js, subjects_.c_str(), durable.c_str(), nullptr, &options,
                                 nullptr),
                NATS_OK);
      // Until the expected count, then once more to show that nothing else is there.
      for (;;) {
        natsMsgList list{};
        const natsStatus status =
            natsSubscription_Fetch(&list, sub, 500, seen.size() < expected ? 5000 : 300, nullptr);
        if (status == NATS_TIMEOUT) break;
        EXPECT_EQ(status, NATS_OK) << natsStatus_GetText(status);
        if (status != NATS_OK) break;
        for (int i = 0; i < list.Count; ++i) {
          natsMsg* msg = list.Msgs[i];
          const char* msg_id = "";
          const char* stream = "";
          const char* version = "0";
          natsMsgHeader_Get(msg, "Nats-Msg-Id", &msg_id);
          natsMsgHeader_Get(msg, "annals-stream", &stream);
          natsMsgHeader_Get(msg, "annals-version", &version);
          const auto body = nlohmann::json::parse(std::string(
              natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
          seen.push_back({msg_id, body["id"].get<std::string>(), stream, std::atoll(version)});
          natsMsg_Ack(msg, nullptr);
        }
        natsMsgList_Destroy(&list);
      }
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    });
    return seen;
  }

 private:
  template <typename F>
  void with_js(F&& work) const {
    natsConnection* connection = nullptr;
    if (natsConnection_ConnectTo(&connection, url_.c_str()) != NATS_OK) return;
    jsCtx* js = nullptr;
    if (natsConnection_JetStream(&js, connection, nullptr) == NATS_OK) {
      work(js);
      jsCtx_Destroy(js);
    }
    natsConnection_Destroy(connection);
  }

  std::string url_;
  std::string subjects_;
};

// Appends `per_stream` events to each of `streams` streams of `category` (in appends of up to 100),
// and as many to noise streams that the relay does not select. Returns the order events' ids.
struct Log {
  std::set<std::string> ids;
  annals::Position last;
};
void append_round(annals::EventStore& store, const std::string& category, int streams,
                  int per_stream, const std::string& tag, Log& log) {
  for (int s = 0; s < streams; ++s) {
    for (int done = 0; done < per_stream;) {
      const int n = std::min(100, per_stream - done);
      std::vector<NewEvent> batch;
      for (int i = 0; i < n; ++i) {
        const auto id = annals::EventId::generate();
        log.ids.insert(id.to_string());
        batch.push_back(NewEvent{.id = id, .type = "Placed", .data = {{"n", done + i}}});
      }
      log.last = store
                     .append(StreamId{category + "-" + tag + std::to_string(s)},
                             ExpectedVersion::any(), std::move(batch))
                     .position;
      static_cast<void>(store.append(StreamId{"noise-" + tag + std::to_string(s)},
                                     ExpectedVersion::any(), {NewEvent{.type = "Ignored"}}));
      done += n;
    }
  }
}

// Every appended order event exactly once, each stream's versions 1..n in order.
void expect_exactly_once_in_order(const std::vector<Checker::Seen>& seen, const Log& log) {
  std::set<std::string> ids;
  std::map<std::string, std::int64_t> last_version;
  std::size_t duplicates = 0;
  std::size_t out_of_order = 0;
  for (const auto& s : seen) {
    EXPECT_EQ(s.msg_id, s.event_id);
    if (!ids.insert(s.event_id).second) ++duplicates;
    auto& last = last_version[s.stream];
    if (s.version != last + 1) ++out_of_order;
    last = s.version;
  }
  EXPECT_EQ(seen.size(), log.ids.size());
  EXPECT_EQ(duplicates, 0U);
  EXPECT_EQ(out_of_order, 0U);
  EXPECT_EQ(ids, log.ids);
}

std::unique_ptr<annals::EventStore> open_events() {
  return annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
}

std::unique_ptr<projections::ProjectionStore> open_projection_store() {
  return projections::make_postgres_projection_store({.connection_string = test_database_url()});
}

// The relay in-process (the library): the broker is killed with SIGKILL while the relay works
// through a backlog, events keep coming while it is down, the relay reports "reconnecting",
// and after the restart the consumer has every selected event once, in order.
TEST(RelayNatsTest, BrokerKilledMidStreamLosesNothingAndRepeatsNothing) {
  NatsServer nats;
  Checker checker(nats.url(), "orders.>");
  ASSERT_TRUE(eventually([&] {
    natsConnection* c = nullptr;
    if (natsConnection_ConnectTo(&c, nats.url().c_str()) != NATS_OK) return false;
    natsConnection_Destroy(c);
    return true;
  }));
  const auto events = open_events();
  const auto store = open_projection_store();
  Log log;
  append_round(*events, "order", 6, 100, "a", log);

  projections::ProjectionRunner runner(*events, *store, {.poll_interval = 100ms});
  runner.add(relay::make_relay(relay::make_nats_sink({.url = nats.url(),
                                                      .stream = kStream,
                                                      .stream_subjects = {"orders.>"},
                                                      .ack_timeout = 1000ms}),
                               {.name = "orders-out",
                                .selection = {.categories = {"order"}},
                                .subject_prefix = "orders"}),
             {.batch_size = 50, .initial_backoff = 10ms, .max_backoff = 200ms});
  runner.start();

  // Mid-stream: part of the backlog is stored, the rest is not.
  ASSERT_TRUE(eventually([&] { return checker.stored().value_or(0) >= 50; }));
  nats.kill();
  const auto stored_at_kill = checker.stored();  // empty: the server is gone
  EXPECT_FALSE(stored_at_kill.has_value());
  append_round(*events, "order", 6, 30, "b", log);
  ASSERT_TRUE(eventually([&] {
    return runner.status("orders-out").state == projections::ProjectionState::kReconnecting;
  }));
  const auto during_outage = store->checkpoint("orders-out");

  nats.start();
  append_round(*events, "order", 6, 20, "c", log);
  ASSERT_TRUE(runner.wait_for("orders-out", log.last, 60s));
  EXPECT_GT(store->checkpoint("orders-out"), during_outage);
  runner.stop();

  expect_exactly_once_in_order(checker.read_all(log.ids.size()), log);
}

#ifdef ANNALS_CLI_PATH
// `annals relay` as a child process, frozen (SIGSTOP) mid-batch: messages are in JetStream past
// the stored checkpoint. It is then killed with SIGKILL; a new `annals relay`
// sends the batch again from the checkpoint, JetStream drops the re-sends by Nats-Msg-Id, and
// SIGTERM stops it cleanly (exit 0, last status line "stopped").
TEST(RelayNatsTest, RelayKilledMidBatchResendsAndConsumerSeesEachEventOnce) {
  NatsServer nats;
  Checker checker(nats.url(), "invoices.>");
  const auto events = open_events();
  const auto store = open_projection_store();
  Log log;
  append_round(*events, "invoice", 10, 300, "x", log);
  const std::vector<std::string> argv = {ANNALS_CLI_PATH,
                                         "--db",
                                         test_database_url(),
                                         "relay",
                                         "--nats",
                                         nats.url(),
                                         "--create-stream",
                                         kStream,
                                         "--subject-prefix",
                                         "invoices",
                                         "--category",
                                         "invoice",
                                         "--batch-size",
                                         "5000",
                                         "--json",
                                         "--status-interval",
                                         "0.2"};
  {
    ChildProcess first(argv, "relay-1");
    // Freeze it (SIGSTOP) once it has published part of the log; it is mid-batch when JetStream
    // holds a message past the stored checkpoint. The whole backlog fits in one batch, so the
    // first freeze normally finds that; where another client of the cluster holds a transaction
    // open, the relay sees the log in shorter pages and a freeze may fall between two batches:
    // then it runs on (SIGCONT) and is frozen again a little later.
    bool mid_batch = false;
    for (int attempt = 0; attempt < 20 && !mid_batch; ++attempt) {
      const auto before = checker.stored().value_or(0);
      ASSERT_TRUE(eventually([&] { return checker.stored().value_or(0) >= before + 200; }));
      first.kill(SIGSTOP);
      const auto published = checker.last_position();
      ASSERT_TRUE(published.has_value());
      mid_batch = store->checkpoint("relay") < *published;
      if (!mid_batch) first.kill(SIGCONT);
    }
    ASSERT_TRUE(mid_batch) << "never frozen between publishing and checkpointing";
    EXPECT_LT(checker.stored().value_or(0), log.ids.size());
    first.kill(SIGKILL);
    EXPECT_EQ(first.wait(), 128 + SIGKILL);
  }
  ChildProcess second(argv, "relay-2");
  // The last append's position, not head_position(): the head is the newest settled event,
  // which a transaction held open elsewhere in the cluster can keep behind the appends.
  ASSERT_TRUE(projections::wait_for_checkpoint(*store, "relay", log.last, 60s));
  const auto code = second.stop(SIGTERM, 30s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  const auto lines = second.lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(nlohmann::json::parse(lines.back().text)["state"], "stopped");

  expect_exactly_once_in_order(checker.read_all(log.ids.size()), log);
}
#endif

}  // namespace
