// The relay without a broker: its default mapping and selection, and the webhook sink against a
// cpp-httplib server started in the test (retries of 503s, "reconnecting" while the receiver is
// down, a refused message parked as a dead letter, per-stream order). In-memory stores: no
// server needed. Waiting is on conditions (runner.wait_for, eventually), never sleeps.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/metrics.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "annals/relay/relay.hpp"
#include "annals/relay/webhook_sink.hpp"
#include "eventually.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::testing::eventually;
namespace relay = annals::relay;
namespace projections = annals::projections;
using namespace std::chrono_literals;

annals::RecordedEvent sample_event() {
  auto store = annals::make_in_memory_event_store();
  static_cast<void>(store->append(
      StreamId{"order-7"}, ExpectedVersion::any(),
      {NewEvent{.type = "Order.Placed*", .data = {{"total", 42}}, .metadata = {{"by", "ada"}}}}));
  return store->read_all().front();
}

TEST(RelayMappingTest, DefaultMessageCarriesEventIdSubjectHeadersAndEnvelope) {
  const auto event = sample_event();
  const auto message = relay::to_integration_message(event, "shop out");
  EXPECT_EQ(message.subject, "shop_out.order.Order_Placed_");
  EXPECT_EQ(message.id, event.id.to_string());
  const auto body = nlohmann::json::parse(message.payload);
  EXPECT_EQ(body["id"], event.id.to_string());
  EXPECT_EQ(body["stream"], "order-7");
  EXPECT_EQ(body["version"], 1);
  EXPECT_EQ(body["type"], "Order.Placed*");
  EXPECT_EQ(body["position"], event.position.to_string());
  EXPECT_EQ(body["data"], (nlohmann::json{{"total", 42}}));
  EXPECT_EQ(body["metadata"], (nlohmann::json{{"by", "ada"}}));
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"annals-stream", "order-7"},
      {"annals-version", "1"},
      {"annals-type", "Order.Placed*"},
      {"annals-position", event.position.to_string()}};
  EXPECT_EQ(message.headers, headers);
}

TEST(RelayMappingTest, SelectionMatchesAnyListedCategoryAndType) {
  const auto event = sample_event();
  EXPECT_TRUE(relay::RelaySelection{}.matches(event));
  EXPECT_TRUE((relay::RelaySelection{.categories = {"account", "order"}}.matches(event)));
  EXPECT_FALSE((relay::RelaySelection{.categories = {"account"}}.matches(event)));
  EXPECT_TRUE((relay::RelaySelection{.event_types = {"Order.Placed*"}}.matches(event)));
  EXPECT_FALSE(
      (relay::RelaySelection{.categories = {"order"}, .event_types = {"X"}}.matches(event)));
}

TEST(RelayMappingTest, RefusesNullSinkAndBadNames) {
  EXPECT_THROW(static_cast<void>(relay::make_relay(nullptr, {})), annals::InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(relay::make_webhook_sink({.url = "ftp://x"})),
               annals::InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(relay::make_webhook_sink({.url = "http://x", .attempts = 0})),
               annals::InvalidArgumentError);
}

// A webhook receiver: answers 503 while `down`, 400 to events of type Poison, 503 to the first
// `flaky` requests, 200 otherwise; records what it took.
class Receiver {
 public:
  Receiver() {
    server_.Post("/hook", [this](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard lock(mutex_);
      ++requests_;
      if (down_ || flaky_ > 0) {
        if (flaky_ > 0) --flaky_;
        response.status = 503;
        return;
      }
      if (request.get_header_value("annals-type") == "Poison") {
        response.status = 400;
        response.set_content("no poison here", "text/plain");
        return;
      }
      taken_.push_back({request.get_header_value("Idempotency-Key"),
                        request.get_header_value("annals-stream"),
                        std::stoll(request.get_header_value("annals-version")),
                        nlohmann::json::parse(request.body)});
      response.status = 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Bound and listening already (connections queue); stop() needs the accept loop running.
    static_cast<void>(eventually([this] { return server_.is_running(); }));
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  struct Taken {
    std::string id;
    std::string stream;
    std::int64_t version;
    nlohmann::json body;
  };

  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  void set_down(bool down) {
    std::lock_guard lock(mutex_);
    down_ = down;
  }
  void set_flaky(int n) {
    std::lock_guard lock(mutex_);
    flaky_ = n;
  }
  [[nodiscard]] std::vector<Taken> taken() const {
    std::lock_guard lock(mutex_);
    return taken_;
  }
  [[nodiscard]] int requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  bool down_ = false;
  int flaky_ = 0;
  int requests_ = 0;
  std::vector<Taken> taken_;
};

// Records the relay's metrics (the projection metrics, labelled with the relay's name).
class RecordingSink final : public annals::MetricsSink {
 public:
  void add(annals::CounterId counter, const annals::MetricLabels& labels,
           std::uint64_t amount) override {
    std::lock_guard lock(mutex_);
    counters_[{counter, std::string(labels.projection)}] += amount;
  }
  void set(annals::GaugeId gauge, const annals::MetricLabels& labels, double value) override {
    std::lock_guard lock(mutex_);
    gauges_[{gauge, std::string(labels.projection)}] = value;
  }
  void observe(annals::HistogramId histogram, const annals::MetricLabels& labels, double,
               std::string_view) override {
    std::lock_guard lock(mutex_);
    ++observations_[{histogram, std::string(labels.projection)}];
  }
  [[nodiscard]] std::uint64_t counter(annals::CounterId id, const std::string& name) const {
    std::lock_guard lock(mutex_);
    const auto it = counters_.find({id, name});
    return it == counters_.end() ? 0 : it->second;
  }
  [[nodiscard]] bool has_gauge(annals::GaugeId id, const std::string& name) const {
    std::lock_guard lock(mutex_);
    return gauges_.contains({id, name});
  }
  [[nodiscard]] std::uint64_t observations(annals::HistogramId id, const std::string& name) const {
    std::lock_guard lock(mutex_);
    const auto it = observations_.find({id, name});
    return it == observations_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<annals::CounterId, std::string>, std::uint64_t> counters_;
  std::map<std::pair<annals::GaugeId, std::string>, double> gauges_;
  std::map<std::pair<annals::HistogramId, std::string>, std::uint64_t> observations_;
};

TEST(RelayWebhookTest, DeliversInOrderRetriesOutagesAndParksRefusedMessages) {
  Receiver receiver;
  receiver.set_down(true);
  auto events = annals::make_in_memory_event_store();
  auto store = projections::make_in_memory_projection_store();
  const auto append = [&](const std::string& stream, const std::string& type) {
    return events->append(StreamId{stream}, ExpectedVersion::any(),
                          {NewEvent{.type = type, .data = {{"t", type}}}});
  };
  append("account-1", "Opened");
  append("noise-1", "Ignored");

  const auto metrics = std::make_shared<RecordingSink>();
  projections::ProjectionRunner runner(*events, *store,
                                       {.poll_interval = 50ms, .metrics = metrics});
  runner.add(
      relay::make_relay(
          relay::make_webhook_sink(
              {.url = receiver.url(), .timeout = 2000ms, .attempts = 2, .retry_backoff = 1ms}),
          {.name = "hooks", .selection = {.categories = {"account"}}}),
      {.max_attempts = 2,
       .initial_backoff = 1ms,
       .max_backoff = 20ms,
       .on_failure = projections::OnFailure::kDeadLetter});
  runner.start();

  // The receiver answers 503: the relay reports "reconnecting" and keeps its checkpoint.
  ASSERT_TRUE(eventually(
      [&] { return runner.status("hooks").state == projections::ProjectionState::kReconnecting; }));
  EXPECT_EQ(store->checkpoint("hooks"), annals::Position::start());
  EXPECT_TRUE(receiver.taken().empty());

  // Back up, with one 503 left: the sink's second attempt takes the first message.
  receiver.set_flaky(1);
  receiver.set_down(false);
  append("account-1", "Poison");
  append("account-2", "Opened");
  const auto last = append("account-1", "Deposited");
  ASSERT_TRUE(runner.wait_for("hooks", last.position, 30s));

  const auto taken = receiver.taken();
  std::map<std::string, std::vector<std::int64_t>> versions;
  std::vector<std::string> types;
  for (const auto& t : taken) {
    versions[t.stream].push_back(t.version);
    types.push_back(t.body["type"]);
  }
  // Exactly the selected events, each once; Poison (version 2 of account-1) is parked.
  EXPECT_EQ(taken.size(), 3U);
  EXPECT_EQ(versions["account-1"], (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(versions["account-2"], (std::vector<std::int64_t>{1}));
  const auto parked = store->list_dead_letters({.projection = "hooks"});
  ASSERT_EQ(parked.size(), 1U);
  EXPECT_EQ(parked.front().event.type, "Poison");
  EXPECT_NE(parked.front().error.find("status 400"), std::string::npos) << parked.front().error;
  EXPECT_EQ(runner.status("hooks").dead_letters, 1U);
  // Throughput, lag and batch latency reach the MetricsSink under projection="hooks".
  EXPECT_GE(metrics->counter(annals::CounterId::kProjectionEvents, "hooks"), 3U);
  EXPECT_EQ(metrics->counter(annals::CounterId::kProjectionDeadLetters, "hooks"), 1U);
  EXPECT_GE(metrics->counter(annals::CounterId::kProjectionErrors, "hooks"), 2U);
  EXPECT_TRUE(metrics->has_gauge(annals::GaugeId::kProjectionLagEvents, "hooks"));
  EXPECT_GE(metrics->observations(annals::HistogramId::kProjectionBatchDuration, "hooks"), 1U);
  runner.stop();
}

}  // namespace
