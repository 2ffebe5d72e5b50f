// bank-service's observability, end to end on PostgreSQL (docs/observability.md,
// docs/samples/bank.md): /metrics scraped over HTTP and parsed as the Prometheus text format
// (every line well formed, the library's and the service's metrics present with exact counts,
// the series independent of the data), and W3C trace context: a valid traceparent header is
// stored in the events' metadata and named by the projections' log lines; a malformed or
// repeated one is ignored.
#include <httplib.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/postgres/postgres_event_store.hpp"
#include "eventually.hpp"
#include "service_process.hpp"
#include "test_roles.hpp"

namespace bank_test {
namespace {

using nlohmann::json;

constexpr const char* kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr const char* kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 12; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

struct Reply {
  int status = 0;  // 0: no answer
  json body;
  std::string text;
};

class Api {
 public:
  explicit Api(int port) : client_("127.0.0.1", port) {
    client_.set_connection_timeout(std::chrono::seconds(5));
    client_.set_read_timeout(std::chrono::seconds(60));
  }
  Reply post(const std::string& path, const json& body, const httplib::Headers& headers = {}) {
    return reply(client_.Post(path.c_str(), headers, body.dump(), "application/json"));
  }
  Reply get(const std::string& path) { return reply(client_.Get(path.c_str())); }

 private:
  static Reply reply(const httplib::Result& result) {
    Reply r;
    if (!result) return r;
    r.status = result->status;
    r.text = result->body;
    r.body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
  }
  httplib::Client client_;
};

// One sample of the Prometheus text format: `name{labels} value`.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The exposition parsed strictly (text format 0.0.4): every line is a # HELP, a # TYPE or a
// sample with a valid metric name, well-formed quoted label values and a number. A line that
// is none of these fails the test. `types`: metric family -> counter/gauge/histogram.
struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;

  [[nodiscard]] std::optional<double> value(
      const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }
  // Every series (name and labels, no value), for comparing two scrapes.
  [[nodiscard]] std::set<std::string> series() const {
    std::set<std::string> out;
    for (const auto& s : samples) {
      std::string key = s.name;
      for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
      out.insert(key);
    }
    return out;
  }
};

Exposition parse(const std::string& text) {
  static const std::regex kHelp(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*)");
  static const std::regex kType(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?)re");
  Exposition out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (line.empty() || std::regex_match(line, kHelp)) continue;
    if (std::regex_match(line, m, kType)) {
      out.types[m[1].str()] = m[2].str();
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      ADD_FAILURE() << "not a Prometheus text line: " << line;
      continue;
    }
    Sample sample{.name = m[1].str(), .labels = {}, .value = 0};
    std::string labels = m[3].str();
    std::smatch l;
    while (std::regex_search(labels, l, kLabel) && l.position(0) == 0) {
      sample.labels[l[1].str()] = l[2].str();
      labels = l.suffix().str();
    }
    EXPECT_TRUE(labels.empty()) << "malformed labels in: " << line;
    const std::string value = m[4].str();
    if (value == "+Inf" || value == "-Inf" || value == "NaN" || value == "Nan") {
      sample.value = 0;
    } else {
      std::size_t used = 0;
      sample.value = std::stod(value, &used);
      EXPECT_EQ(used, value.size()) << "not a number in: " << line;
    }
    out.samples.push_back(std::move(sample));
  }
  return out;
}

class BankObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_path_ =
        std::filesystem::temp_directory_path() / ("bank-observability-" + random_suffix() + ".log");
    service_.emplace(
        std::vector<std::string>{"--db", annals::testing::test_roles().writer_url, "--migrate-db",
                                 annals::testing::test_roles().admin_url, "--port", "0",
                                 "--log-level", "debug", "--log-file", log_path_.string()});
    ASSERT_TRUE(service_->ready());
    api_.emplace(service_->port());
  }
  void TearDown() override {
    if (service_ && service_->ready()) {
      EXPECT_EQ(service_->stop(SIGTERM), 0);
    }
    std::filesystem::remove(log_path_);
  }

  Api& api() { return *api_; }

  // Waits until the three read models have applied `position` (read-your-writes).
  void wait_for_read_models(const std::string& id, const std::string& position) {
    for (const std::string& path :
         {"/accounts/" + id, "/accounts/" + id + "/transactions", std::string("/totals/daily")}) {
      const auto r = api().get(path + "?after=" + position);
      ASSERT_EQ(r.status, 200) << path << ": " << r.text;
    }
  }

  std::string log() const {
    std::ifstream in(log_path_);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // The metadata of every event of account `id`, read from the store directly.
  static std::vector<json> metadata_of(const std::string& id) {
    auto store = annals::postgres::make_postgres_event_store(
        {.connection_string = annals::testing::test_roles().admin_url});
    std::vector<json> out;
    for (const auto& event : store->read_stream(annals::StreamId("account-" + id))) {
      out.push_back(event.metadata.get_json());
    }
    return out;
  }

  std::filesystem::path log_path_;
  std::optional<ServiceProcess> service_;
  std::optional<Api> api_;
};

TEST_F(BankObservabilityTest, ScrapesMetricsInThePrometheusTextFormat) {
  const std::string id = "obs-" + random_suffix();
  ASSERT_EQ(api().post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);
  ASSERT_EQ(api().post("/accounts/" + id + "/deposit", json{{"amount", 10}}).status, 200);
  const auto last = api().post("/accounts/" + id + "/withdraw", json{{"amount", 4}});
  ASSERT_EQ(last.status, 200) << last.text;
  wait_for_read_models(id, last.body["position"].get<std::string>());

  const auto scraped = api().get("/metrics");
  ASSERT_EQ(scraped.status, 200);
  const Exposition metrics = parse(scraped.text);
  EXPECT_EQ(metrics.types.at("annals_appends_total"), "counter");
  EXPECT_EQ(metrics.types.at("annals_append_duration_seconds"), "histogram");
  EXPECT_EQ(metrics.types.at("annals_projection_lag_events"), "gauge");
  EXPECT_EQ(metrics.types.at("bank_commands_total"), "counter");
  // This process appended exactly three times, each a new event.
  EXPECT_EQ(metrics.value("annals_appends_total", {{"store", "postgres"}, {"outcome", "ok"}}), 3);
  EXPECT_EQ(metrics.value("annals_appended_events_total", {{"store", "postgres"}}), 3);
  EXPECT_EQ(metrics.value("annals_append_duration_seconds_count", {{"store", "postgres"}}), 3);
  EXPECT_EQ(metrics.value("bank_commands_total", {{"command", "deposit"}, {"outcome", "ok"}}), 1);
  // The projections of this process applied the three events (and any earlier ones of the
  // shared test database).
  for (const char* projection : {"bank.balances", "bank.transactions", "bank.daily_totals"}) {
    const auto applied =
        metrics.value("annals_projection_events_applied_total", {{"projection", projection}});
    ASSERT_TRUE(applied.has_value()) << projection;
    EXPECT_GE(*applied, 1) << projection;
  }
  ASSERT_TRUE(metrics.value("annals_projection_lag_events", {{"projection", "bank.balances"}}));
  // Histogram buckets are cumulative and end with +Inf equal to the count.
  double previous = 0;
  for (const auto& s : metrics.samples) {
    if (s.name != "annals_append_duration_seconds_bucket") continue;
    EXPECT_GE(s.value, previous) << s.labels.at("le");
    previous = s.value;
    if (s.labels.at("le") == "+Inf") {
      EXPECT_EQ(s.value, 3);
    }
  }
}

// Attack: account ids, owners and amounts are user input; none becomes a label, so a thousand
// accounts make no new series.
TEST_F(BankObservabilityTest, SeriesDoNotGrowWithAccounts) {
  // Every kind of request: commands that append, one that is refused, the three read models
  // (waited for, so that every projection series exists) and the event store's history.
  const auto touch = [&](int i) {
    const std::string id = "card-" + std::to_string(i) + "-" + random_suffix();
    EXPECT_EQ(api().post("/accounts", json{{"account_id", id}, {"owner", "O\"wner{" + id}}).status,
              201);
    const auto deposit = api().post("/accounts/" + id + "/deposit", json{{"amount", i + 1}});
    EXPECT_EQ(deposit.status, 200) << deposit.text;
    EXPECT_EQ(api().post("/accounts/" + id + "/withdraw", json{{"amount", 1'000'000}}).status, 422);
    wait_for_read_models(id, deposit.body.value("position", ""));
    return api().get("/accounts/" + id + "/history").status;
  };
  ASSERT_EQ(touch(0), 200);
  const auto before = parse(api().get("/metrics").text).series();
  for (int i = 1; i < 25; ++i) ASSERT_EQ(touch(i), 200);
  const auto after = parse(api().get("/metrics").text).series();
  EXPECT_EQ(after, before);
  for (const auto& series : after) {
    EXPECT_EQ(series.find("card-"), std::string::npos) << series;
  }
}

TEST_F(BankObservabilityTest, StoresAValidTraceparentAndTheProjectionLogsItsTraceId) {
  const std::string id = "traced-" + random_suffix();
  const auto opened = api().post("/accounts", json{{"account_id", id}, {"owner", "Ada"}},
                                 {{"traceparent", kTraceparent}});
  ASSERT_EQ(opened.status, 201) << opened.text;
  ASSERT_EQ(
      api().get("/accounts/" + id + "?after=" + opened.body["position"].get<std::string>()).status,
      200);

  const auto metadata = metadata_of(id);
  ASSERT_EQ(metadata.size(), 1u);
  EXPECT_EQ(metadata[0].value("traceparent", ""), kTraceparent) << metadata[0].dump();
  // The balances projection applied it and named the trace in its log line (written right
  // after the batch's commit, which is what the read above waited for: hence eventually).
  const std::string applied = "projection bank.balances: applied bank.AccountOpened account-" + id +
                              "@1 at " + opened.body["position"].get<std::string>() +
                              " trace_id=" + kTraceId;
  EXPECT_TRUE(annals::testing::eventually([&] { return log().find(applied) != std::string::npos; }))
      << "no line with: " << applied << "\nin:\n"
      << log();
}

// A retry of a command (same command_id) usually carries a new span: it is answered with the
// original result, and the stored events keep the first request's traceparent.
TEST_F(BankObservabilityTest, AResendWithAnotherTraceparentReturnsTheOriginal) {
  const std::string id = "resent-" + random_suffix();
  ASSERT_EQ(api().post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);
  const json body{{"amount", 7}, {"command_id", "cmd-" + id}};
  const auto first =
      api().post("/accounts/" + id + "/deposit", body, {{"traceparent", kTraceparent}});
  ASSERT_EQ(first.status, 200) << first.text;
  const auto again =
      api().post("/accounts/" + id + "/deposit", body,
                 {{"traceparent", "00-11111111111111111111111111111111-2222222222222222-01"}});
  ASSERT_EQ(again.status, 200) << again.text;
  EXPECT_EQ(again.body, first.body);
  const auto metadata = metadata_of(id);
  ASSERT_EQ(metadata.size(), 2u);
  EXPECT_EQ(metadata[1].value("traceparent", ""), kTraceparent);
}

TEST_F(BankObservabilityTest, IgnoresAMalformedOrRepeatedTraceparent) {
  const std::string id = "untraced-" + random_suffix();
  ASSERT_EQ(api()
                .post("/accounts", json{{"account_id", id}, {"owner", "Ada"}},
                      {{"traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}})
                .status,
            201);
  ASSERT_EQ(api()
                .post("/accounts/" + id + "/deposit", json{{"amount", 5}},
                      {{"traceparent", "not a trace\"}, \"evil\": 1"}})
                .status,
            200);
  ASSERT_EQ(api()
                .post("/accounts/" + id + "/deposit", json{{"amount", 6}},
                      {{"traceparent", kTraceparent}, {"traceparent", kTraceparent}})
                .status,
            200);
  for (const auto& metadata : metadata_of(id)) {
    EXPECT_FALSE(metadata.contains("traceparent")) << metadata.dump();
    EXPECT_FALSE(metadata.contains("evil")) << metadata.dump();
  }
  EXPECT_EQ(metadata_of(id).size(), 3u);
}

}  // namespace
}  // namespace bank_test
