// The SnapshotStore contract: one typed test suite every SnapshotStore must pass (in memory,
// PostgreSQL, third parties'), like EventStoreContract for event stores.
//
//   struct MySnapshotsFactory {
//     static std::unique_ptr<annals::SnapshotStore> make() { return make_my_snapshots(); }
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(Mine, SnapshotStoreContract, MySnapshotsFactory);
//
// Stores may share data between calls of make(): each test uses streams with random ids.
// Thread safety: one test drives the store from several threads.
//
// A store that binds snapshots to an event log (the PostgreSQL store does: a snapshot of a
// version the stream does not have is never used) needs the events first: its Factory also
// defines `static void prepare_stream(const annals::StreamId& stream, annals::StreamVersion
// last)`, which makes the stream have events 1..last. Each test calls it before saving.
#pragma once

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/snapshot_store.hpp"

namespace annals::testkit {

template <typename Factory>
class SnapshotStoreContract : public ::testing::Test {
 protected:
  SnapshotStoreContract() : store_(Factory::make()) {}

  annals::SnapshotStore& store() { return *store_; }

  /// Makes `stream` have events up to `last`, for stores bound to an event log.
  static void prepare(const annals::StreamId& stream, annals::StreamVersion last) {
    if constexpr (requires { Factory::prepare_stream(stream, last); }) {
      Factory::prepare_stream(stream, last);
    }
  }

  static annals::StreamId stream() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return annals::StreamId("snapcontract-" + std::to_string(rng()));
  }

  static annals::Snapshot snapshot(const annals::StreamId& stream, annals::StreamVersion version,
                                   std::int32_t schema, nlohmann::json state) {
    return annals::Snapshot{.stream_id = stream,
                            .version = version,
                            .schema_version = schema,
                            .state = std::move(state)};
  }

 private:
  std::unique_ptr<annals::SnapshotStore> store_;
};

TYPED_TEST_SUITE_P(SnapshotStoreContract);

TYPED_TEST_P(SnapshotStoreContract, MissingSnapshotLoadsAsEmpty) {
  EXPECT_EQ(this->store().load(this->stream()), std::nullopt);
}

TYPED_TEST_P(SnapshotStoreContract, SavedSnapshotLoadsBackEqual) {
  const auto s = this->stream();
  this->prepare(s, 7);
  const auto saved = this->snapshot(
      s, 7, 2, {{"balance", 42}, {"owner", "Zoë \"Z\" 🦊"}, {"tags", {1, 2.5, nullptr, true}}});
  this->store().save(saved);
  EXPECT_EQ(this->store().load(s), saved);
}

TYPED_TEST_P(SnapshotStoreContract, NewerSnapshotReplacesOlderOfSameSchema) {
  const auto s = this->stream();
  this->prepare(s, 5);
  this->store().save(this->snapshot(s, 3, 1, {{"n", 3}}));
  this->store().save(this->snapshot(s, 5, 1, {{"n", 5}}));
  EXPECT_EQ(this->store().load(s), this->snapshot(s, 5, 1, {{"n", 5}}));
  this->store().save(this->snapshot(s, 5, 1, {{"n", 55}}));  // same version: the later save wins
  EXPECT_EQ(this->store().load(s), this->snapshot(s, 5, 1, {{"n", 55}}));
}

TYPED_TEST_P(SnapshotStoreContract, OlderSnapshotOfSameSchemaIsNotStored) {
  const auto s = this->stream();
  this->prepare(s, 9);
  this->store().save(this->snapshot(s, 9, 1, {{"n", 9}}));
  this->store().save(this->snapshot(s, 4, 1, {{"n", 4}}));
  EXPECT_EQ(this->store().load(s), this->snapshot(s, 9, 1, {{"n", 9}}));
}

TYPED_TEST_P(SnapshotStoreContract, SnapshotOfAnotherSchemaAlwaysReplaces) {
  const auto s = this->stream();
  this->prepare(s, 9);
  this->store().save(this->snapshot(s, 9, 1, {{"n", 9}}));
  this->store().save(this->snapshot(s, 4, 2, {{"m", 4}}));
  EXPECT_EQ(this->store().load(s), this->snapshot(s, 4, 2, {{"m", 4}}));
  this->store().save(this->snapshot(s, 2, 1, {{"n", 2}}));  // and back (a rollback release)
  EXPECT_EQ(this->store().load(s), this->snapshot(s, 2, 1, {{"n", 2}}));
}

TYPED_TEST_P(SnapshotStoreContract, RemoveForgetsTheSnapshot) {
  const auto s = this->stream();
  this->prepare(s, 1);
  this->store().save(this->snapshot(s, 1, 1, {{"n", 1}}));
  this->store().remove(s);
  EXPECT_EQ(this->store().load(s), std::nullopt);
  this->store().remove(s);  // absent: not an error
}

TYPED_TEST_P(SnapshotStoreContract, InvalidSnapshotsAreRefusedAndNothingIsStored) {
  const auto s = this->stream();
  EXPECT_THROW(this->store().save(this->snapshot(s, 0, 1, {{"n", 0}})),
               annals::InvalidArgumentError);
  EXPECT_THROW(this->store().save(this->snapshot(s, 1, 0, {{"n", 0}})),
               annals::InvalidArgumentError);
  EXPECT_THROW(this->store().save(this->snapshot(s, 1, 1, {{"text", std::string("a\0b", 3)}})),
               annals::InvalidArgumentError);
  EXPECT_THROW(this->store().save(this->snapshot(s, 1, 1, {{"text", std::string("\xff\xfe")}})),
               annals::InvalidArgumentError);
  EXPECT_EQ(this->store().load(s), std::nullopt);
}

TYPED_TEST_P(SnapshotStoreContract, ConcurrentSaversKeepTheNewest) {
  const auto s = this->stream();
  this->prepare(s, 83);
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int v = 1; v <= 20; ++v) {
        const annals::StreamVersion version = v * 4 + w;
        this->store().save(this->snapshot(s, version, 1, {{"v", version}}));
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(this->store().load(s), this->snapshot(s, 83, 1, {{"v", 83}}));
}

TYPED_TEST_P(SnapshotStoreContract, LookupOfACleanSnapshotIgnoresNothing) {
  const auto s = this->stream();
  EXPECT_FALSE(this->store().lookup(s).snapshot.has_value());
  this->prepare(s, 2);
  const auto before = this->store().stats();
  const auto saved = this->snapshot(s, 2, 1, {{"n", 2}});
  this->store().save(saved);
  const auto found = this->store().lookup(s);
  EXPECT_EQ(found.snapshot, saved);
  EXPECT_EQ(found.ignored, annals::SnapshotIgnored::kNone);
  EXPECT_TRUE(found.usable());
  EXPECT_EQ(this->store().stats(), before);
}

REGISTER_TYPED_TEST_SUITE_P(SnapshotStoreContract, MissingSnapshotLoadsAsEmpty,
                            SavedSnapshotLoadsBackEqual, NewerSnapshotReplacesOlderOfSameSchema,
                            OlderSnapshotOfSameSchemaIsNotStored,
                            SnapshotOfAnotherSchemaAlwaysReplaces, RemoveForgetsTheSnapshot,
                            InvalidSnapshotsAreRefusedAndNothingIsStored,
                            ConcurrentSaversKeepTheNewest, LookupOfACleanSnapshotIgnoresNothing);

}  // namespace annals::testkit
