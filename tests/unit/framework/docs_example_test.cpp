// The examples of docs/aggregates.md and docs/framework.md, compiled and run (the blocks
// between docs:begin and docs:end are copied into the docs verbatim).
#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/repository.hpp"
#include "annals/testkit/fault_injection.hpp"
#include "annals/testkit/printers.hpp"
#include "bank.hpp"

namespace {

TEST(DocsExampleTest, WiringAndSendingCommands) {
  // docs:begin bank-wiring
  auto store = annals::make_in_memory_event_store();  // or annals::postgres::make_...
  auto snapshots = annals::make_in_memory_snapshot_store();

  annals::EventRegistry registry;
  registry.register_events<bank::Account>();

  annals::CommandBus bus(*store, registry, {.snapshots = snapshots.get()});
  bus.configure<bank::Account>(
      {.snapshots = snapshots.get(), .snapshot_policy = annals::SnapshotPolicy::every(100)});
  bus.handle<bank::Account>(&bank::OpenAccount::account_id);
  bus.handle<bank::Account>(&bank::Deposit::account_id);
  bus.handle<bank::Account>(&bank::Withdraw::account_id);
  bus.handle<bank::Account>(&bank::CloseAccount::account_id);

  bus.send(bank::OpenAccount{"42", "Ada"});
  bus.send(bank::Deposit{"42", 100});
  const annals::AppendResult result =
      bus.send(bank::Withdraw{"42", 30}, {.command_id = "req-7f3c", .actor = "ada"});
  // result.stream_id == "account-42", result.first_version == result.last_version == 3

  try {
    bus.send(bank::Withdraw{"42", 500});
  } catch (const bank::InsufficientFunds& e) {
    // e.balance() == 70: nothing was written, and a domain error is never retried
  }
  // docs:end
  EXPECT_EQ(result.stream_id, annals::StreamId("account-42"));
  EXPECT_EQ(result.first_version, 3);
  EXPECT_EQ(result.last_version, 3);
  EXPECT_EQ(store->stream_version(annals::StreamId("account-42")), 3);
  // docs:begin idempotent-send
  // The client timed out and sends the same request again: same command id, same result,
  // nothing written twice.
  const auto again = bus.send(bank::Withdraw{"42", 30}, {.command_id = "req-7f3c"});
  // again == result
  // docs:end
  EXPECT_EQ(again, result);
  EXPECT_EQ(store->stream_version(annals::StreamId("account-42")), 3);
}

TEST(DocsExampleTest, RepositoryAndTemporalLoading) {
  auto store = annals::make_in_memory_event_store();
  annals::EventRegistry registry;
  registry.register_events<bank::Account>();
  // docs:begin repository
  annals::Repository<bank::Account> accounts(*store, registry);
  auto account = accounts.load("7");  // stream "account-7"; version 0 when new
  account.execute(bank::OpenAccount{"7", "Grace"});
  account.execute(bank::Deposit{"7", 250});  // both pending; state() already includes them
  accounts.save(account, {.command_id = "import-7"});  // expected version: the loaded one
  // account.version() == 2, account.pending() is empty

  // Auditors: the state as of a version, or as of a recorded time.
  const auto opened = accounts.load_at_version("7", 1);  // opened.state().balance == 0
  const auto then = accounts.load_as_of("7", std::chrono::system_clock::now());
  // docs:end
  EXPECT_EQ(account.version(), 2);
  EXPECT_EQ(opened.state().balance, 0);
  EXPECT_TRUE(opened.state().open);
  EXPECT_EQ(then.state().balance, 250);
}

}  // namespace
