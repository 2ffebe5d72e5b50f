// bank-service killed with SIGKILL and restarted at once on the same database: the restarted
// process takes over the dead one's projections as soon as the dead process's database
// sessions end (session liveness, docs/operations.md "Takeover"), not when their 10 s leases
// (the service's default) expire, so a command made right after the restart is readable with
// ?after= within 2 s. Measured from the moment the new process is started (its start-up,
// migration check and projection preparation included) to the first 200 answer that shows the
// command's effect, and from its readiness line to that answer.
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "service_process.hpp"
#include "test_roles.hpp"

namespace bank_test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

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
  Reply post(const std::string& path, const json& body) {
    return reply(client_.Post(path.c_str(), body.dump(), "application/json"));
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

// The service as an application runs it (writer role, migrations through the administrator),
// with its default lease time to live.
std::vector<std::string> service_args() {
  return {"--db",         annals::testing::test_roles().writer_url,
          "--migrate-db", annals::testing::test_roles().admin_url,
          "--port",       "0"};
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::chrono::milliseconds kFreshReadBound{5000};
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr std::chrono::milliseconds kFreshReadBound{5000};
#else
constexpr std::chrono::milliseconds kFreshReadBound{2000};
#endif
#else
constexpr std::chrono::milliseconds kFreshReadBound{2000};
#endif

TEST(BankServiceRestartTest, FreshReadsWithinTwoSecondsOfARestartAfterKillNine) {
  const std::string id = "kill9-" + std::to_string(::getpid());
  {
    ServiceProcess service(service_args());
    ASSERT_TRUE(service.ready());
    Api api(service.port());
    ASSERT_EQ(api.post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);
    const auto deposit = api.post("/accounts/" + id + "/deposit", json{{"amount", 40}});
    ASSERT_EQ(deposit.status, 200) << deposit.text;
    // The projections are owned and live: the read is fresh.
    const auto read =
        api.get("/accounts/" + id + "?after=" + deposit.body["position"].get<std::string>());
    ASSERT_EQ(read.status, 200) << read.text;
    EXPECT_EQ(service.stop(SIGKILL), 128 + SIGKILL);
  }

  const auto restarted_at = Clock::now();
  ServiceProcess service(service_args());
  ASSERT_TRUE(service.ready());
  const auto ready_after =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restarted_at);
  Api api(service.port());
  const auto deposit = api.post("/accounts/" + id + "/deposit", json{{"amount", 2}});
  ASSERT_EQ(deposit.status, 200) << deposit.text;
  const auto path = "/accounts/" + id + "?after=" + deposit.body["position"].get<std::string>();
  Reply read;
  int attempts = 0;
  while (Clock::now() - restarted_at < std::chrono::seconds(30)) {
    ++attempts;
    read = api.get(path);
    if (read.status == 200) break;
    ASSERT_EQ(read.status, 504) << read.text;  // not yet caught up: ask again
  }
  const auto fresh_after =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restarted_at);
  ASSERT_EQ(read.status, 200) << read.text;
  EXPECT_EQ(read.body["balance"], 42) << read.text;
  std::cerr << "restart after kill -9: ready after " << ready_after.count()
            << " ms, fresh ?after= read after " << fresh_after.count() << " ms (" << attempts
            << " GET)\n";
  RecordProperty("ready_ms", static_cast<int>(ready_after.count()));
  RecordProperty("fresh_read_ms", static_cast<int>(fresh_after.count()));
  // 2 s from the process start, the start-up itself (exec, connections, migration check,
  // preparing the projections) included. Waiting out the dead process's lease could not meet
  // it: the lease had at least two thirds of 10 s left when the process was killed. Sanitizer
  // builds run the service two to three times slower (a 2,348 ms run under ASan on a loaded
  // machine); their bound, 5 s, still lies below the 6.67 s a lease wait would take, so the
  // test still tells a takeover from a wait.
  EXPECT_LE(fresh_after, kFreshReadBound);
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace bank_test
