// The fixture of the framework suite (framework_suite.hpp): the stores of a Factory, the bank's
// registry, and helpers shared by the parts (ids, bus wiring and options, settling the log).
// Include framework_suite.hpp, not this one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/repository.hpp"
#include "annals/testkit/fault_injection.hpp"
#include "annals/testkit/printers.hpp"
#include "bank.hpp"

namespace framework_suite {

using annals::AppendResult;
using annals::CommandBus;
using annals::CommandBusOptions;
using annals::CommandContext;
using annals::Repository;
using annals::RepositoryOptions;
using annals::SnapshotPolicy;
using annals::StreamId;
using annals::testkit::FaultInjectingEventStore;
using annals::testkit::FaultInjectingSnapshotStore;
using bank::Account;

inline std::string new_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 16; ++i) id.push_back(kDigits[rng() % 16]);
  return id;
}

/// Routes the bank's four commands to Account.
inline void wire(CommandBus& bus) {
  bus.handle<Account>(&bank::OpenAccount::account_id);
  bus.handle<Account>(&bank::Deposit::account_id);
  bus.handle<Account>(&bank::Withdraw::account_id);
  bus.handle<Account>(&bank::CloseAccount::account_id);
}

/// The state a snapshot holds.
inline Account::State state_of(const annals::Snapshot& snapshot) {
  return snapshot.state.get<Account::State>();
}

/// Bus options for tests: no waiting between retries.
inline CommandBusOptions quick(CommandBusOptions options = {}) {
  options.retry_backoff = std::chrono::milliseconds(0);
  return options;
}

template <typename Factory>
class FrameworkSuite : public ::testing::Test {
 protected:
  FrameworkSuite() : store_(Factory::make_store()), snapshots_(Factory::make_snapshots()) {
    registry_.register_events<Account>();
  }

  annals::EventStore& store() { return *store_; }
  annals::SnapshotStore& snapshots() { return *snapshots_; }
  const annals::EventRegistry& registry() const { return registry_; }

  static StreamId account_stream(const std::string& id) { return StreamId("account-" + id); }

  std::vector<annals::RecordedEvent> read(const StreamId& stream) {
    return store().read_stream(stream, {});
  }

  /// Opens account `id` and deposits `amount` (if > 0) through `bus`.
  static void open(CommandBus& bus, const std::string& id, std::int64_t amount) {
    bus.send(bank::OpenAccount{id, "ada"});
    if (amount > 0) bus.send(bank::Deposit{id, amount});
  }

  /// Waits (bounded) until the global log is settled up to `position`, so that read_all shows
  /// every event up to it (a writing transaction still running anywhere in the cluster holds
  /// readers back: ARCHITECTURE decision 5).
  void wait_settled(const annals::Position& position) {
    const auto signal = store().watch();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      const auto token = signal->observe();
      if (!(store().head_position() < position)) return;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the log did not settle up to " << position.to_string();
        return;
      }
      signal->wait(token, std::chrono::milliseconds(200));
    }
  }

  /// A raw event of the bank, as the bus would store it (for injected concurrent writers).
  annals::NewEvent raw(const Account::Event& event) const { return registry_.encode(event); }

 private:
  std::unique_ptr<annals::EventStore> store_;
  std::unique_ptr<annals::SnapshotStore> snapshots_;
  annals::EventRegistry registry_;
};

TYPED_TEST_SUITE_P(FrameworkSuite);

}  // namespace framework_suite
