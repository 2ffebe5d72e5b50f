// The code of docs/projections.md, compiled and run: every block between `// docs:begin NAME`
// and `// docs:end` appears verbatim in the guide (checked by tests/docs/docs_check_test.cpp).
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"

namespace docs {

// docs:begin projections-balances-projection
// Balances per account, kept in memory. Events come in log order; after a crash or a lost
// lease some come again (at least once), so the projection skips positions it has seen.
class Balances final : public annals::projections::InProcessProjection {
 public:
  std::string name() const override { return "balances"; }

  annals::EventFilter filter() const override {
    annals::EventFilter filter;
    filter.category = "account";
    filter.event_types = {"MoneyDeposited", "MoneyWithdrawn"};
    return filter;
  }

  void handle(const annals::RecordedEvent& event) override {
    std::lock_guard lock(mutex_);
    if (last_ && event.position <= *last_) return;  // already applied
    const auto amount = event.data.at("amount").get<std::int64_t>();
    auto& balance = balances_[event.stream_id.value()];
    balance += event.type == "MoneyDeposited" ? amount : -amount;
    last_ = event.position;
  }

  void clear() override {  // a rebuild starts from nothing
    std::lock_guard lock(mutex_);
    balances_.clear();
    last_.reset();
  }

  std::int64_t balance(const std::string& account) const {
    std::lock_guard lock(mutex_);
    const auto found = balances_.find(account);
    return found == balances_.end() ? 0 : found->second;
  }

 private:
  mutable std::mutex mutex_;  // handle() runs on the runner's thread, balance() on others
  std::map<std::string, std::int64_t> balances_;
  std::optional<annals::Position> last_;
};
// docs:end

annals::AppendResult deposit(annals::EventStore& store, const std::string& account,
                             std::int64_t amount) {
  annals::NewEvent event;
  event.type = "MoneyDeposited";
  event.data = {{"amount", amount}};
  return store.append(annals::StreamId(account), annals::ExpectedVersion::any(), {event});
}

TEST(ProjectionsDocsTest, RunningAProjection) {
  // docs:begin projections-run-runner
  auto events = annals::make_in_memory_event_store();
  auto store = annals::projections::make_in_memory_projection_store();

  annals::projections::RunnerOptions options;
  options.owner = "billing-1";  // default: "<hostname>:<pid>:<4 random hex digits>"
  annals::projections::ProjectionRunner runner(*events, *store, options);

  auto balances = std::make_shared<Balances>();
  runner.add(balances);  // registers it in the store (ProjectionStore::prepare)
  runner.start();        // one thread per projection
  // ... serve requests; the runner keeps `balances` up to date ...
  runner.stop();  // finishes the batch, reports "stopped", releases the lease
  // docs:end
  EXPECT_EQ(runner.status("balances").state, annals::projections::ProjectionState::kStopped);
}

TEST(ProjectionsDocsTest, ReadYourWrites) {
  auto events = annals::make_in_memory_event_store();
  auto store = annals::projections::make_in_memory_projection_store();
  annals::projections::ProjectionRunner runner(*events, *store);
  auto balances = std::make_shared<Balances>();
  runner.add(balances);
  runner.start();
  // docs:begin projections-read-your-writes
  const annals::AppendResult written = deposit(*events, "account-42", 100);
  // Blocks until "balances" has applied everything up to the deposit (or 2 s passed).
  if (runner.wait_for("balances", written.position, std::chrono::seconds(2))) {
    std::cout << "balance: " << balances->balance("account-42") << "\n";  // 100
  } else {
    std::cout << "not yet visible; answer 202 Accepted\n";
  }
  // docs:end
  EXPECT_EQ(balances->balance("account-42"), 100);
  // docs:begin projections-wait-for-checkpoint
  // In another process than the runner: poll the stored checkpoint.
  const bool visible = annals::projections::wait_for_checkpoint(
      *store, "balances", written.position, std::chrono::seconds(2));
  // docs:end
  EXPECT_TRUE(visible);
}

TEST(ProjectionsDocsTest, FailurePolicyAndDeadLetters) {
  auto events = annals::make_in_memory_event_store();
  auto store = annals::projections::make_in_memory_projection_store();
  annals::projections::ProjectionRunner runner(*events, *store);
  // docs:begin projections-failure-policy
  annals::projections::ProjectionOptions options;
  options.batch_size = 200;                                 // events per unit of work
  options.max_attempts = 3;                                 // the first attempt included
  options.initial_backoff = std::chrono::milliseconds(50);  // 50 ms, then ~100 ms, ...
  options.max_backoff = std::chrono::seconds(2);
  options.on_failure = annals::projections::OnFailure::kDeadLetter;  // park and go on
  runner.add(std::make_shared<Balances>(), options);
  // docs:end
  annals::NewEvent bad;
  bad.type = "MoneyDeposited";
  bad.data = {{"amount", "not a number"}};
  events->append(annals::StreamId("account-7"), annals::ExpectedVersion::any(), {bad});
  const auto last = deposit(*events, "account-7", 5);
  runner.start();
  ASSERT_TRUE(runner.wait_for("balances", last.position, std::chrono::seconds(20)));

  std::ostringstream out;
  // docs:begin projections-dead-letters
  annals::projections::DeadLetterQuery query;
  query.projection = "balances";
  query.state = annals::projections::DeadLetterState::kParked;
  for (const auto& letter : store->list_dead_letters(query)) {
    out << letter.id << " " << letter.event.type << " at " << letter.event.position.to_string()
        << ": " << letter.error << " (" << letter.attempts << " attempts)\n";
    store->skip(letter.id);  // or store->request_retry(letter.id) once the code is fixed
  }
  // docs:end
  EXPECT_NE(out.str().find("MoneyDeposited at "), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("(3 attempts)"), std::string::npos) << out.str();
}

TEST(ProjectionsDocsTest, Rebuild) {
  auto events = annals::make_in_memory_event_store();
  auto store = annals::projections::make_in_memory_projection_store();
  annals::projections::RunnerOptions fast;
  fast.request_interval = std::chrono::milliseconds(20);
  annals::projections::ProjectionRunner runner(*events, *store, fast);
  auto balances = std::make_shared<Balances>();
  runner.add(balances);
  const auto last = deposit(*events, "account-1", 10);
  runner.start();
  ASSERT_TRUE(runner.wait_for("balances", last.position, std::chrono::seconds(20)));
  // docs:begin projections-rebuild
  const auto request = runner.rebuild("balances");  // or store->request_rebuild("balances")
  for (;;) {
    const auto now = store->rebuild_request(request.id);
    if (now->state == annals::projections::RebuildState::kDone ||
        now->state == annals::projections::RebuildState::kFailed) {
      std::cout << "rebuild " << to_string(now->state) << "\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // progress: now->progress
  }
  // docs:end
  EXPECT_EQ(store->rebuild_request(request.id)->state, annals::projections::RebuildState::kDone);
  EXPECT_EQ(balances->balance("account-1"), 10);
}

TEST(ProjectionsDocsTest, Status) {
  auto events = annals::make_in_memory_event_store();
  auto store = annals::projections::make_in_memory_projection_store();
  annals::projections::ProjectionRunner runner(*events, *store);
  runner.add(std::make_shared<Balances>());
  const auto last = deposit(*events, "account-1", 10);
  runner.start();
  ASSERT_TRUE(runner.wait_for("balances", last.position, std::chrono::seconds(20)));
  std::ostringstream out;
  // docs:begin projections-status
  for (const auto& s : runner.status()) {
    out << s.name << " " << to_string(s.state) << " at " << s.position.to_string() << ", lag "
        << s.lag_events << " events / " << s.lag_seconds << " s, " << s.events_per_second
        << " events/s, " << s.events_applied << " applied, " << s.errors << " errors, "
        << s.dead_letters << " parked, owner " << (s.lease ? s.lease->owner : "none") << "\n";
  }
  // docs:end
  EXPECT_NE(out.str().find("balances live at "), std::string::npos) << out.str();
}

TEST(ProjectionsDocsTest, TestingAProjection) {
  // docs:begin projections-testing
  auto events = annals::make_in_memory_event_store();
  auto store = annals::projections::make_in_memory_projection_store();
  annals::projections::ProjectionRunner runner(*events, *store);
  auto balances = std::make_shared<Balances>();
  runner.add(balances);
  runner.start();
  const auto written = deposit(*events, "account-1", 10);
  ASSERT_TRUE(runner.wait_for("balances", written.position, std::chrono::seconds(5)));
  EXPECT_EQ(balances->balance("account-1"), 10);
  // docs:end
}

}  // namespace docs
