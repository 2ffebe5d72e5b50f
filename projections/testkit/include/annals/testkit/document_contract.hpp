// DocumentContract: the typed test suite that the document read side (DocumentProjection,
// DocumentReader) must pass on every projection store. Instantiate it once per store with a
// factory whose make() returns a DocumentContractEnv:
//
//   struct InMemoryDocuments {
//     static annals::testkit::DocumentContractEnv make() { ... }
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, DocumentContract, InMemoryDocuments);
//
// Each test uses collections and projections named after a random suffix, so stores may be
// shared between tests. Events are appended first and the runner started after, so that it
// catches up in one go; queries wait for it through after(position) (read-your-writes), never
// with sleeps.
//
// NOLINTBEGIN(readability-identifier-naming): NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE defines
// to_json/from_json, the names nlohmann looks up.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/projections/document_reader.hpp"
#include "annals/projections/documents.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "annals/testkit/contract_support.hpp"

namespace annals::testkit {

/// What one test of the suite runs on. The reader must read what `store` keeps; `store` must
/// outlive the reader (declaration order: events, store, reader).
struct DocumentContractEnv {
  std::unique_ptr<EventStore> events;
  std::unique_ptr<projections::ProjectionStore> store;
  std::unique_ptr<projections::DocumentReader> reader;
};

namespace document_contract {

/// The document the suite stores and reads back.
struct Account {
  std::string owner;
  std::int64_t balance = 0;
  std::vector<std::string> tags;
  friend bool operator==(const Account&, const Account&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, owner, balance, tags)

/// A projection keeping one document per stream in `collection`: "Opened" upserts it,
/// "Deposited" patches the balance, "Tagged" patches the tags, "Closed" removes it, "Raw"
/// upserts its data as is (for documents that do not decode), "Credited" increments the field
/// it names, "Tallied" adds its data's members (add_to, creating the document when missing).
class Accounts final : public projections::DocumentProjection {
 public:
  /// Reads the streams of `category` only (the event store may be shared by other tests).
  Accounts(std::string name, std::string collection, std::string category = {})
      : name_(std::move(name)),
        collection_(std::move(collection)),
        category_(std::move(category)) {}
  std::string name() const override { return name_; }
  EventFilter filter() const override {
    if (category_.empty()) return {};
    return {.category = category_, .event_types = {}};
  }
  std::vector<projections::CollectionSpec> collections() const override {
    return {{collection_,
             {projections::DocumentIndex::ordered("balance"),
              projections::DocumentIndex::contains("tags")}}};
  }
  void handle(const RecordedEvent& e, projections::Documents& docs) override {
    auto accounts = docs.collection(collection_);
    const auto& id = e.stream_id.value();
    if (e.type == "Opened") {
      accounts.upsert(id, Account{e.data.at("owner").get<std::string>(), 0, {}});
    } else if (e.type == "Deposited") {
      accounts.patch(id, {{"balance", e.data.at("balance")}});
    } else if (e.type == "Tagged") {
      accounts.patch(id, {{"tags", e.data.at("tags")}});
    } else if (e.type == "Credited") {
      accounts.increment(id, e.data.at("field").get<std::string>(),
                         e.data.at("by").get<std::int64_t>());
    } else if (e.type == "Tallied") {
      accounts.add_to(id, e.data);
    } else if (e.type == "Closed") {
      accounts.remove(id);
    } else if (e.type == "Raw") {
      docs.upsert_json(collection_, id, e.data);
    }
  }

 private:
  std::string name_;
  std::string collection_;
  std::string category_;
};

}  // namespace document_contract

template <typename Factory>
class DocumentContract : public ::testing::Test {
 protected:
  using Account = document_contract::Account;
  static constexpr std::chrono::milliseconds kTimeout{30'000};

  void SetUp() override {
    env_ = Factory::make();
    suffix_ = contract_detail::random_hex(10);
    collection_ = "acc_" + suffix_;
    projection_ = std::make_shared<document_contract::Accounts>("docs_" + suffix_, collection_,
                                                                "acct" + suffix_);
  }

  void TearDown() override {
    if (runner_) runner_->stop();
  }

  /// "acct<suffix>-<n>": the category is this test's own.
  std::string stream(int n) const { return "acct" + suffix_ + "-" + std::to_string(n); }

  /// Appends one event to stream(n); returns its position.
  Position append(int n, const std::string& type, nlohmann::json data) {
    NewEvent event;
    event.type = type;
    event.data = std::move(data);
    return env_.events->append(StreamId(stream(n)), ExpectedVersion::any(), {event}).position;
  }

  /// Opens account n with `balance` and `tags`; returns the last position.
  Position open(int n, const std::string& owner, std::int64_t balance,
                std::vector<std::string> tags = {}) {
    static_cast<void>(append(n, "Opened", {{"owner", owner}}));
    static_cast<void>(append(n, "Deposited", {{"balance", balance}}));
    return append(n, "Tagged", {{"tags", std::move(tags)}});
  }

  /// Starts a runner with the projection (once).
  void run(projections::ProjectionOptions options = {},
           std::chrono::milliseconds request_interval = std::chrono::milliseconds(1000)) {
    if (runner_) return;
    projections::RunnerOptions runner_options{.owner = "contract-" + suffix_};
    runner_options.request_interval = request_interval;
    runner_options.acquire_interval = std::min(runner_options.acquire_interval, request_interval);
    runner_ =
        std::make_unique<projections::ProjectionRunner>(*env_.events, *env_.store, runner_options);
    runner_->add(projection_, options);
    runner_->start();
  }

  /// The typed collection, waiting for `position` when given.
  projections::TypedCollection<Account> accounts(std::optional<Position> after = std::nullopt) {
    auto view = env_.reader->collection<Account>(collection_);
    return after ? view.after(*after, kTimeout) : view;
  }

  projections::DocumentReader& reader() { return *env_.reader; }
  projections::ProjectionStore& store() { return *env_.store; }
  const std::string& collection() const { return collection_; }
  document_contract::Accounts& projection() { return *projection_; }

  template <typename E, typename F>
  static void expect_error(F&& call, const std::string& mention) {
    auto error = contract_detail::catch_error<E>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected " << typeid(E).name() << " mentioning " << mention;
    EXPECT_THAT(error->what(), ::testing::HasSubstr(mention));
  }

 private:
  DocumentContractEnv env_;
  std::string suffix_;
  std::string collection_;
  std::shared_ptr<document_contract::Accounts> projection_;
  std::unique_ptr<projections::ProjectionRunner> runner_;
};

}  // namespace annals::testkit

// At global scope, so that users instantiate it with a one-liner at global scope.
using annals::testkit::DocumentContract;

TYPED_TEST_SUITE_P(DocumentContract);

TYPED_TEST_P(DocumentContract, UpsertPatchAndRemoveAreReadBackTyped) {
  using Doc = typename TestFixture::Account;
  static_cast<void>(this->open(1, "ada", 250, {"vip"}));
  static_cast<void>(this->open(2, "bob", 10));
  const auto last = this->append(2, "Closed", nlohmann::json::object());
  this->run();
  const auto accounts = this->accounts(last);
  EXPECT_EQ(accounts.get(this->stream(1)), (Doc{"ada", 250, {"vip"}}));
  EXPECT_EQ(accounts.get(this->stream(2)), std::nullopt) << "removed";
  EXPECT_EQ(accounts.get("no-such-id"), std::nullopt);
  EXPECT_EQ(accounts.count(), 1);
}

TYPED_TEST_P(DocumentContract, PatchOfAMissingDocumentLeavesItMissing) {
  static_cast<void>(this->append(1, "Deposited", {{"balance", 5}}));
  const auto last = this->open(2, "bob", 7);
  this->run();
  EXPECT_EQ(this->accounts(last).get(this->stream(1)), std::nullopt);
  EXPECT_EQ(this->accounts().count(), 1);
}

TYPED_TEST_P(DocumentContract, IncrementAddsToAnIntegerFieldOfAnExistingDocument) {
  static_cast<void>(this->open(1, "ada", 100));
  static_cast<void>(this->append(1, "Credited", {{"field", "balance"}, {"by", 25}}));
  static_cast<void>(this->append(1, "Credited", {{"field", "balance"}, {"by", -5}}));
  static_cast<void>(this->append(1, "Credited", {{"field", "visits"}, {"by", 1}}));
  static_cast<void>(this->append(1, "Credited", {{"field", "nested.count"}, {"by", 1}}));
  static_cast<void>(this->append(2, "Credited", {{"field", "balance"}, {"by", 1}}));
  const auto last = this->open(3, "cy", 1);
  this->run();
  const auto raw = this->reader().get(this->collection(), this->stream(1),
                                      annals::projections::ReadAfter{last, TestFixture::kTimeout});
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->at("balance"), 120);
  EXPECT_EQ(raw->at("visits"), 1) << "a missing field counts as 0";
  EXPECT_FALSE(raw->contains("nested")) << "a missing parent leaves the document unchanged";
  EXPECT_EQ(this->accounts().get(this->stream(2)), std::nullopt)
      << "a missing document stays missing";
}

TYPED_TEST_P(DocumentContract, AddToCreatesAMissingDocumentAndAddsToItsFields) {
  static_cast<void>(this->append(5, "Tallied", {{"visits", 1}, {"spent", 10}}));
  static_cast<void>(this->append(5, "Tallied", {{"visits", 1}, {"spent", -3}, {"refunds", 7}}));
  static_cast<void>(this->open(1, "ada", 100));
  const auto last = this->append(1, "Tallied", {{"balance", 5}, {"visits", 2}});
  this->run();
  const annals::projections::ReadAfter after{last, TestFixture::kTimeout};
  EXPECT_EQ(this->reader().get(this->collection(), this->stream(5), after),
            (nlohmann::json{{"visits", 2}, {"spent", 7}, {"refunds", 7}}))
      << "created from the first amounts, then added to";
  const auto ada = this->reader().get(this->collection(), this->stream(1), after);
  ASSERT_TRUE(ada.has_value());
  EXPECT_EQ(ada->at("balance"), 105);
  EXPECT_EQ(ada->at("visits"), 2) << "a missing field counts as 0";
  EXPECT_EQ(ada->at("owner"), "ada") << "the other fields stay";
}

TYPED_TEST_P(DocumentContract, AddToRefusesNonIntegersAndSumsBeyond64Bits) {
  constexpr std::int64_t kLargest = std::numeric_limits<std::int64_t>::max();
  static_cast<void>(
      this->append(1, "Raw", {{"text", "12"}, {"ratio", 1.5}, {"big", kLargest - 1}}));
  // Each refused (in memory by the library, on PostgreSQL by the database), so parked.
  static_cast<void>(this->append(1, "Tallied", {{"text", 1}}));
  static_cast<void>(this->append(1, "Tallied", {{"ratio", 1}}));
  static_cast<void>(this->append(1, "Tallied", {{"big", 5}, {"other", 1}}));
  static_cast<void>(this->append(1, "Tallied", {{"big", 1}}));  // fits exactly
  const auto last = this->append(1, "Tallied", {{"big", kLargest}, {"other", 2}});
  this->run({.max_attempts = 1,
             .initial_backoff = std::chrono::milliseconds(1),
             .on_failure = annals::projections::OnFailure::kDeadLetter});
  const auto stored =
      this->reader().get(this->collection(), this->stream(1),
                         annals::projections::ReadAfter{last, TestFixture::kTimeout});
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->at("big"), kLargest) << "only the sum that fits was applied";
  EXPECT_EQ(stored->at("text"), "12");
  EXPECT_FALSE(stored->contains("other")) << "a refused event writes none of its members";
  annals::projections::DeadLetterQuery query;
  query.projection = this->projection().name();
  const auto letters = this->store().list_dead_letters(query);
  ASSERT_EQ(letters.size(), 4U);
  // The same message on both stores, naming the amount, the field, the document and its value.
  EXPECT_THAT(letters[2].error,
              ::testing::HasSubstr("cannot add 5 to field \"big\" of document \"" +
                                   this->stream(1) + "\" holding " + std::to_string(kLargest - 1)));
  EXPECT_THAT(letters[0].error, ::testing::HasSubstr("holding \"12\""));
}

TYPED_TEST_P(DocumentContract, AFailingWriteParksItsEventAndTheOthersApplyExactlyOnce) {
  static_cast<void>(this->open(1, "ada", 100));
  static_cast<void>(this->append(2, "Raw", {{"owner", "bob"}, {"balance", "lots"}}));
  // Refused: balance holds a string (on PostgreSQL by the database, inside a pipelined batch).
  static_cast<void>(this->append(2, "Credited", {{"field", "balance"}, {"by", 1}}));
  static_cast<void>(this->append(1, "Credited", {{"field", "balance"}, {"by", 1}}));
  const auto last = this->open(3, "cy", 7);
  this->run({.max_attempts = 1,
             .initial_backoff = std::chrono::milliseconds(1),
             .on_failure = annals::projections::OnFailure::kDeadLetter});
  const auto accounts = this->accounts(last);
  EXPECT_EQ(accounts.get(this->stream(1))->balance, 101) << "applied once, not twice";
  EXPECT_EQ(accounts.get(this->stream(3))->balance, 7);
  EXPECT_EQ(this->reader().get(this->collection(), this->stream(2), std::nullopt)->at("balance"),
            "lots");
  annals::projections::DeadLetterQuery query;
  query.projection = this->projection().name();
  const auto letters = this->store().list_dead_letters(query);
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].event.type, "Credited");
  EXPECT_EQ(letters[0].event.stream_id.value(), this->stream(2));
}

TYPED_TEST_P(DocumentContract, ARebuildEmptiesTheCollectionsAndReplays) {
  const auto last = this->open(1, "ada", 100);
  auto& store = this->store();
  auto& projection = this->projection();
  store.prepare(projection);
  // A stray document, as if written by a bug that a rebuild must wipe out.
  {
    const auto lease = store.try_acquire(projection.name(), "stray", std::chrono::minutes(1));
    ASSERT_TRUE(lease);
    auto batch = store.begin(*lease, annals::Position::start());
    dynamic_cast<annals::projections::DocumentWork&>(*batch)
        .documents(projection.collections())
        .upsert_json(this->collection(), "stray", {{"owner", "nobody"}});
    batch->commit(annals::Position::start());
    store.release(*lease);
  }
  ASSERT_EQ(this->accounts().count(), 1);
  const auto request = store.request_rebuild(projection.name());
  this->run({}, std::chrono::milliseconds(10));
  const auto deadline = std::chrono::steady_clock::now() + TestFixture::kTimeout;
  while (store.rebuild_request(request.id)->state != annals::projections::RebuildState::kDone) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the rebuild never finished";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // back-off, not a sync
  }
  const auto accounts = this->accounts(last);
  EXPECT_EQ(accounts.get("stray"), std::nullopt);
  EXPECT_EQ(accounts.get(this->stream(1))->balance, 100);
  EXPECT_EQ(accounts.count(), 1);
}

TYPED_TEST_P(DocumentContract, FindFiltersByEqualityRangesAndContains) {
  static_cast<void>(this->open(1, "ada", 100, {"vip", "eu"}));
  static_cast<void>(this->open(2, "bob", 200, {"eu"}));
  static_cast<void>(this->open(3, "cy", 300, {"us"}));
  const auto last = this->open(4, "ada", 400, {});
  this->run();
  const auto accounts = this->accounts(last);
  using annals::projections::DocumentFilter;
  const auto ids = [&](const DocumentFilter& filter) {
    return accounts.find({.filter = filter}).ids;
  };
  EXPECT_EQ(ids(DocumentFilter().eq("owner", "ada")),
            (std::vector<std::string>{this->stream(1), this->stream(4)}));
  EXPECT_EQ(ids(DocumentFilter().ge("balance", 200).lt("balance", 400)),
            (std::vector<std::string>{this->stream(2), this->stream(3)}));
  EXPECT_EQ(ids(DocumentFilter().gt("balance", 100.5)),
            (std::vector<std::string>{this->stream(2), this->stream(3), this->stream(4)}));
  EXPECT_EQ(ids(DocumentFilter().contains("tags", "eu")),
            (std::vector<std::string>{this->stream(1), this->stream(2)}));
  EXPECT_EQ(ids(DocumentFilter().contains("tags", nlohmann::json::array({"vip", "eu"}))),
            (std::vector<std::string>{this->stream(1)}));
  EXPECT_EQ(ids(DocumentFilter().eq("owner", "ada").le("balance", 100)),
            (std::vector<std::string>{this->stream(1)}));
  EXPECT_EQ(accounts.count(DocumentFilter().eq("owner", "ada")), 2);
  EXPECT_EQ(accounts.count(DocumentFilter().eq("owner", "nobody")), 0);
}

TYPED_TEST_P(DocumentContract, AFilterOnAMissingFieldMatchesNothing) {
  const auto last = this->open(1, "ada", 100);
  this->run();
  const auto accounts = this->accounts(last);
  using annals::projections::DocumentFilter;
  EXPECT_TRUE(accounts.find({.filter = DocumentFilter().eq("missing", 1)}).items.empty());
  EXPECT_TRUE(accounts.find({.filter = DocumentFilter().lt("missing.deeper", 1)}).items.empty());
  EXPECT_TRUE(accounts.find({.filter = DocumentFilter().contains("missing", "x")}).items.empty());
  EXPECT_EQ(accounts.count(DocumentFilter().ge("owner.name", "a")), 0) << "owner is a string";
  EXPECT_TRUE(accounts.find({.order_by = "missing"}).items.empty())
      << "ordering by a field leaves out the documents that lack it";
}

TYPED_TEST_P(DocumentContract, FindOrdersAndPagesWithAKeysetCursor) {
  // Balances with a tie (two of 300), so that the id breaks it.
  const std::vector<std::int64_t> balances = {300, 100, 500, 300, 200};
  annals::Position last;
  for (int n = 0; n < 5; ++n) last = this->open(n, "o", balances[static_cast<std::size_t>(n)]);
  this->run();
  const auto accounts = this->accounts(last);
  for (const bool descending : {false, true}) {
    std::vector<std::string> seen;
    annals::projections::DocumentQuery query{
        .order_by = "balance", .descending = descending, .limit = 2};
    int pages = 0;
    for (;;) {
      const auto page = accounts.find(query);
      ++pages;
      seen.insert(seen.end(), page.ids.begin(), page.ids.end());
      if (!page.next) break;
      query.after = page.next;
      ASSERT_LT(pages, 10);
    }
    std::vector<std::string> expected = {this->stream(1), this->stream(4), this->stream(0),
                                         this->stream(3), this->stream(2)};
    if (descending) expected = {expected.rbegin(), expected.rend()};
    EXPECT_EQ(seen, expected) << (descending ? "descending" : "ascending");
    EXPECT_EQ(pages, 3);
  }
  // By id, with a filter, in pages of one.
  annals::projections::DocumentQuery by_id{
      .filter = annals::projections::DocumentFilter().ge("balance", 300), .limit = 1};
  const auto first = accounts.find(by_id);
  ASSERT_EQ(first.ids, std::vector<std::string>{this->stream(0)});
  by_id.after = first.next;
  EXPECT_EQ(accounts.find(by_id).ids, std::vector<std::string>{this->stream(2)});
}

TYPED_TEST_P(DocumentContract, HostileNamesAndPathsAreRefusedBeforeAnyQuery) {
  const auto last = this->open(1, "ada", 100);
  this->run();
  static_cast<void>(this->accounts(last).get(this->stream(1)));
  auto& reader = this->reader();
  for (const std::string& bad :
       std::vector<std::string>{"x\"; DROP TABLE annals.events; --", "acc'", "Accounts",
                                "caf\u00e9", "a b", "", "a;b", "1abc", std::string(49, 'a')}) {
    TestFixture::template expect_error<annals::InvalidArgumentError>(
        [&] { static_cast<void>(reader.get(bad, "id", std::nullopt)); }, "collection name");
    TestFixture::template expect_error<annals::InvalidArgumentError>(
        [&] { static_cast<void>(reader.count(bad, {}, std::nullopt)); }, "collection name");
  }
  const auto accounts = this->accounts();
  for (const std::string& bad : std::vector<std::string>{
           "owner'--", "a..b", "a.", "caf\u00e9", "x\"y", "a;b", "", "$1", "a}b", "a,b", "a b"}) {
    TestFixture::template expect_error<annals::InvalidArgumentError>(
        [&] {
          static_cast<void>(
              accounts.find({.filter = annals::projections::DocumentFilter().eq(bad, 1)}));
        },
        "field path");
    TestFixture::template expect_error<annals::InvalidArgumentError>(
        [&] { static_cast<void>(accounts.find({.order_by = bad})); }, "field path");
  }
  // Values are parameters: hostile text is data, found exactly.
  EXPECT_TRUE(
      accounts.find({.filter = annals::projections::DocumentFilter().eq("owner", "ada' OR '1'='1")})
          .items.empty());
  EXPECT_EQ(accounts.count(annals::projections::DocumentFilter().eq("owner", "ada")), 1);
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] { static_cast<void>(accounts.find({.after = std::string("not a cursor")})); },
      "invalid cursor");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] { static_cast<void>(accounts.find({.limit = 0})); }, "limit");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] {
        static_cast<void>(accounts.find({.filter = annals::projections::DocumentFilter().lt(
                                             "balance", nlohmann::json::array())}));
      },
      "range");
}

TYPED_TEST_P(DocumentContract, ADocumentThatDoesNotDecodeIsATypedErrorAndTheReaderGoesOn) {
  static_cast<void>(this->append(1, "Raw", {{"owner", 42}, {"balance", "lots"}}));
  const auto last = this->open(2, "bob", 5);
  this->run();
  const auto accounts = this->accounts(last);
  TestFixture::template expect_error<annals::projections::DocumentDecodeError>(
      [&] { static_cast<void>(accounts.get(this->stream(1))); }, this->stream(1));
  TestFixture::template expect_error<annals::projections::DocumentDecodeError>(
      [&] { static_cast<void>(accounts.find({})); }, this->collection());
  EXPECT_EQ(accounts.get(this->stream(2)), (typename TestFixture::Account{"bob", 5, {}}));
  EXPECT_EQ(this->reader().get(this->collection(), this->stream(1), std::nullopt),
            (nlohmann::json{{"owner", 42}, {"balance", "lots"}}))
      << "the untyped reader still reads it";
}

TYPED_TEST_P(DocumentContract, AfterTimesOutWithATypedErrorWhenTheProjectionLags) {
  const auto last = this->open(1, "ada", 1);
  // Prepared, so the collection is declared, but no runner applies the events.
  this->store().prepare(this->projection());
  const auto accounts =
      this->reader().template collection<typename TestFixture::Account>(this->collection());
  const auto started = std::chrono::steady_clock::now();
  TestFixture::template expect_error<annals::projections::CatchUpTimeoutError>(
      [&] { static_cast<void>(accounts.after(last, std::chrono::milliseconds(50)).get("x")); },
      "did not pass position");
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(50));
  TestFixture::template expect_error<annals::projections::CatchUpTimeoutError>(
      [&] { static_cast<void>(accounts.after(last, std::chrono::milliseconds(1)).count()); },
      this->collection());
  // Without after(): the collection reads as it is (empty).
  EXPECT_EQ(accounts.count(), 0);
  this->run();
  EXPECT_EQ(accounts.after(last, TestFixture::kTimeout).count(), 1);
}

TYPED_TEST_P(DocumentContract, AnUndeclaredCollectionIsNotFound) {
  auto& reader = this->reader();
  TestFixture::template expect_error<annals::NotFoundError>(
      [&] { static_cast<void>(reader.get("nothing_" + this->collection(), "x", std::nullopt)); },
      "not declared");
  TestFixture::template expect_error<annals::NotFoundError>(
      [&] { static_cast<void>(reader.projection_of("nothing_" + this->collection())); },
      "not declared");
}

TYPED_TEST_P(DocumentContract, AnUncommittedOrFencedBatchWritesNoDocument) {
  auto& store = this->store();
  store.prepare(this->projection());
  EXPECT_EQ(this->reader().projection_of(this->collection()), this->projection().name());
  const auto lease = store.try_acquire(this->projection().name(), "a", std::chrono::minutes(1));
  ASSERT_TRUE(lease);
  const auto event = [&](int n, const std::string& type, nlohmann::json data) {
    return annals::RecordedEvent{.stream_id = annals::StreamId(this->stream(n)),
                                 .version = 0,
                                 .position = annals::Position(100, n),
                                 .id = annals::EventId::generate(),
                                 .type = type,
                                 .schema_version = 1,
                                 .data = std::move(data),
                                 .metadata = nlohmann::json::object(),
                                 .recorded_at = {}};
  };
  {
    // A crash in the middle of a batch: applied, never committed.
    auto batch = store.begin(*lease, annals::Position::start());
    batch->set_pipelined(true);
    this->projection().apply(event(1, "Opened", {{"owner", "ada"}}), *batch);
  }
  EXPECT_EQ(this->accounts().count(), 0);
  {
    auto batch = store.begin(*lease, annals::Position::start());
    batch->set_pipelined(true);
    this->projection().apply(event(1, "Opened", {{"owner", "ada"}}), *batch);
    batch->commit(annals::Position(100, 1));
  }
  EXPECT_EQ(this->accounts().count(), 1);
  // A stale owner's batch: refused at commit, its documents with it.
  const auto taken = store.try_acquire(this->projection().name(), "a", std::chrono::minutes(1));
  ASSERT_TRUE(taken);
  store.release(*taken);
  const auto newer = store.try_acquire(this->projection().name(), "b", std::chrono::minutes(1));
  ASSERT_TRUE(newer);
  TestFixture::template expect_error<annals::projections::OwnershipLostError>(
      [&] {
        auto batch = store.begin(*lease, annals::Position(100, 1));  // may refuse here already
        this->projection().apply(event(2, "Opened", {{"owner", "mallory"}}), *batch);
        batch->commit(annals::Position(100, 2));
      },
      this->projection().name());
  EXPECT_EQ(this->accounts().count(), 1);
  EXPECT_EQ(this->accounts().get(this->stream(2)), std::nullopt);
}

TYPED_TEST_P(DocumentContract, WritesToUndeclaredCollectionsAndBadDocumentsAreRefused) {
  auto& store = this->store();
  store.prepare(this->projection());
  const auto lease = store.try_acquire(this->projection().name(), "a", std::chrono::minutes(1));
  ASSERT_TRUE(lease);
  auto batch = store.begin(*lease, annals::Position::start());
  auto& documents = dynamic_cast<annals::projections::DocumentWork&>(*batch).documents(
      this->projection().collections());
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] {
        documents.upsert_json("other_" + this->collection(), "id", {{"a", 1}});
      },
      "collections() lacks");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] { documents.upsert_json(this->collection(), "id", nlohmann::json::array()); },
      "JSON object");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] {
        documents.upsert_json(this->collection(), std::string("a\0b", 3), {{"a", 1}});
      },
      "document id");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] { documents.patch_json(this->collection(), "id", 5); }, "JSON object");
  const std::string c = this->collection();
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] { documents.add_to(c, "id", nlohmann::json::object()); }, "non-empty JSON object");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] { documents.add_to(c, "id", nlohmann::json::array({1})); }, "non-empty JSON object");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] {
        documents.add_to(c, "id", {{"a", 1.5}});
      },
      "not an integer within 64 bits");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] {
        documents.add_to(c, "id", {{"a", std::numeric_limits<std::uint64_t>::max()}});
      },
      "not an integer within 64 bits");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] {
        documents.add_to(c, "id", {{"a.b", 1}});
      },
      "is a path");
  TestFixture::template expect_error<annals::InvalidArgumentError>(
      [&] {
        documents.add_to(c, "id", {{"a'b", 1}});
      },
      "a'b");
  batch.reset();
  // Another projection cannot declare the same collection.
  annals::testkit::document_contract::Accounts intruder(this->projection().name() + "_other",
                                                        this->collection());
  TestFixture::template expect_error<annals::InvalidArgumentError>([&] { store.prepare(intruder); },
                                                                   "belongs to projection");
}

REGISTER_TYPED_TEST_SUITE_P(
    DocumentContract, UpsertPatchAndRemoveAreReadBackTyped, PatchOfAMissingDocumentLeavesItMissing,
    IncrementAddsToAnIntegerFieldOfAnExistingDocument,
    AddToCreatesAMissingDocumentAndAddsToItsFields, AddToRefusesNonIntegersAndSumsBeyond64Bits,
    AFailingWriteParksItsEventAndTheOthersApplyExactlyOnce, ARebuildEmptiesTheCollectionsAndReplays,
    FindFiltersByEqualityRangesAndContains, AFilterOnAMissingFieldMatchesNothing,
    FindOrdersAndPagesWithAKeysetCursor, HostileNamesAndPathsAreRefusedBeforeAnyQuery,
    ADocumentThatDoesNotDecodeIsATypedErrorAndTheReaderGoesOn,
    AfterTimesOutWithATypedErrorWhenTheProjectionLags, AnUndeclaredCollectionIsNotFound,
    AnUncommittedOrFencedBatchWritesNoDocument,
    WritesToUndeclaredCollectionsAndBadDocumentsAreRefused);

// NOLINTEND(readability-identifier-naming)
