// Personal data that can be forgotten (issue 16, docs/personal-data.md): one typed suite,
// instantiated on the in-memory stores (unit/framework/personal_data_test.cpp) and on
// PostgreSQL (integration/framework/personal_data_postgres_test.cpp).
//
// A Factory provides:
//   static std::unique_ptr<annals::EventStore> make_store();
//   static std::unique_ptr<annals::SubjectKeyStore> make_keys();
//   static std::unique_ptr<annals::SnapshotStore> make_snapshots();
// Stores may be shared between tests; every test uses account ids of its own.
#pragma once

#include <atomic>
#include <barrier>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/eventstore/subject_key_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/personal_data.hpp"
#include "annals/framework/repository.hpp"
#include "annals/framework/typed_events.hpp"
#include "bank.hpp"
#include "log_capture.hpp"

namespace personal_data_suite {

using annals::PersonalData;
using bank::Account;

inline std::string new_id() {
  static std::atomic<int> counter{0};
  return annals::EventId::generate().to_string().substr(24) + std::to_string(++counter);
}

// A hex and a base64 form of the same 32 bytes, as a user would set ANNALS_MASTER_KEY.
inline constexpr const char* kMasterHex =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
inline constexpr const char* kOtherMasterHex =
    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

inline std::string hex_of(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

// An event only the tampering test appends (so that other tests' reads of AccountOpened never
// meet its deliberately broken envelope in a shared database).
struct NoteTaken {
  static constexpr std::string_view kTypeName = "test.NoteTaken";
  static constexpr int kSchemaVersion = 1;
  std::string text;
  friend bool operator==(const NoteTaken&, const NoteTaken&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NoteTaken, text)

template <typename Factory>
class PersonalDataSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Factory::make_store();
    keys_ = Factory::make_keys();
    personal_ = std::make_unique<PersonalData>(*keys_, *store_);
    registry_.register_events<Account>();
    registry_.personal_data<bank::AccountOpened>({"owner"});
    registry_.personal_data<NoteTaken>({"text"});
    registry_.use_personal_data(*personal_);
    registry_.validate();
    bus_ = std::make_unique<annals::CommandBus>(*store_, registry_);
    bus_->handle<Account>(&bank::OpenAccount::account_id);
    bus_->handle<Account>(&bank::Deposit::account_id);
  }

  // Opens account `id` for `owner` and deposits 100; returns the stream.
  annals::StreamId open(const std::string& id, const std::string& owner) {
    opened_ = bus_->send(bank::OpenAccount{id, owner}).position;
    static_cast<void>(bus_->send(bank::Deposit{id, 100}));
    return annals::StreamId("account-" + id);
  }

  // Reads the global log after `position` through `handlers` until it has passed `until` (an
  // event the handlers read), waiting (bounded) on the store's change signal: on PostgreSQL a
  // transaction still running anywhere in the cluster holds readers back (decision 5).
  void catch_up(const annals::EventHandlers<>& handlers, annals::Position& position,
                const annals::Position& until) {
    const auto signal = store_->watch();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      const auto token = signal->observe();
      for (;;) {
        const auto page = annals::read_all_typed(*store_, handlers, {.after = position});
        position = page.last_position;
        if (page.read == 0) break;
      }
      if (!(position < until)) return;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the log did not settle up to " << until.to_string();
        return;
      }
      signal->wait(token, std::chrono::milliseconds(200));
    }
  }

  annals::Position opened_;  // of the AccountOpened event open() appended last

  std::unique_ptr<annals::EventStore> store_;
  std::unique_ptr<annals::SubjectKeyStore> keys_;
  std::unique_ptr<PersonalData> personal_;
  annals::EventRegistry registry_;
  std::unique_ptr<annals::CommandBus> bus_;
};

TYPED_TEST_SUITE_P(PersonalDataSuite);

TYPED_TEST_P(PersonalDataSuite, OwnerIsStoredEncryptedAndLoadsInClear) {
  const auto id = new_id();
  const auto stream = this->open(id, "Ada Lovelace");

  const auto stored = this->store_->read_stream(stream);
  ASSERT_EQ(stored.size(), 2U);
  const auto& owner = stored[0].data.get_json().at("owner");
  EXPECT_TRUE(annals::is_envelope(owner)) << owner.dump();
  EXPECT_EQ(owner.at("subject"), stream.value());
  EXPECT_EQ(owner.at("kind"), "string");
  EXPECT_EQ(stored[0].data.get_json().dump().find("Ada"), std::string::npos);

  annals::Repository<Account> accounts(*this->store_, this->registry_);
  const auto account = accounts.load(id);
  EXPECT_EQ(account.state().owner, "Ada Lovelace");
  EXPECT_EQ(account.state().balance, 100);
}

TYPED_TEST_P(PersonalDataSuite, ForgottenOwnerReplaysAsRedactedOnEveryLoad) {
  const auto id = new_id();
  const auto stream = this->open(id, "Grace Hopper");

  const auto result = this->personal_->forget(stream.value());
  EXPECT_EQ(result.keys_destroyed, 1U);
  EXPECT_EQ(result.key_ids.size(), 1U);
  EXPECT_EQ(result.event.stream_id, annals::forgotten_stream_of(stream.value()));

  annals::Repository<Account> accounts(*this->store_, this->registry_);
  const auto now = accounts.load(id);
  EXPECT_EQ(now.state().owner, annals::kRedacted);
  EXPECT_EQ(now.state().balance, 100);  // everything else replays as before
  EXPECT_EQ(now.version(), 2);
  EXPECT_EQ(accounts.load_at_version(id, 1).state().owner, annals::kRedacted);
  EXPECT_EQ(accounts.load_as_of(id, std::chrono::system_clock::now()).state().owner,
            annals::kRedacted);

  // The aggregate takes commands as before.
  static_cast<void>(this->bus_->send(bank::Deposit{id, 5}));
  EXPECT_EQ(accounts.load(id).state().balance, 105);
}

TYPED_TEST_P(PersonalDataSuite, ReadModelErasesItsCopyWhenItHandlesTheSignal) {
  const auto id = new_id();
  const auto stream = this->open(id, "Alan Turing");

  // A read model that copies the owner, fed by typed handlers (as projections are).
  std::map<std::string, std::string> owners;
  annals::EventHandlers<> handlers(this->registry_);
  handlers.on<bank::AccountOpened>(
      [&](const bank::AccountOpened& e, const annals::EventContext& c) {
        owners[c.stream_id().value()] = e.owner;
      });
  handlers.on<annals::SubjectForgotten>([&](const annals::SubjectForgotten& e) {
    owners[e.subject] = std::string(annals::kRedacted);
  });
  annals::Position position;
  this->catch_up(handlers, position, this->opened_);
  EXPECT_EQ(owners[stream.value()], "Alan Turing");

  const auto forgotten = this->personal_->forget(stream.value()).event.position;
  this->catch_up(handlers, position, forgotten);
  EXPECT_EQ(owners[stream.value()], annals::kRedacted);

  // A rebuild from the start never sees the name again.
  owners.clear();
  position = annals::Position{};
  this->catch_up(handlers, position, forgotten);
  EXPECT_EQ(owners[stream.value()], annals::kRedacted);
}

TYPED_TEST_P(PersonalDataSuite, ForgettingTwiceIsHarmless) {
  const auto id = new_id();
  const auto stream = this->open(id, "Edsger Dijkstra");
  const auto first = this->personal_->forget(stream.value());
  const auto second = this->personal_->forget(stream.value());
  EXPECT_EQ(first.keys_destroyed, 1U);
  EXPECT_EQ(second.keys_destroyed, 0U);
  EXPECT_EQ(second.key_ids, first.key_ids);
  EXPECT_EQ(second.event, first.event);  // the same event: not appended again
  EXPECT_EQ(this->store_->read_stream(annals::forgotten_stream_of(stream.value())).size(), 1U);

  // A subject that never had a key can be forgotten too (a read model may hold a copy).
  const auto never = this->personal_->forget("account-" + new_id());
  EXPECT_EQ(never.keys_destroyed, 0U);
  EXPECT_TRUE(never.key_ids.empty());
}

TYPED_TEST_P(PersonalDataSuite, TamperedCiphertextIsATypedErrorNamingTheEvent) {
  const annals::StreamId stream("notes-" + new_id());
  auto envelope = this->personal_->seal(stream.value(), "text", "Barbara Liskov");
  // Flip one character of the ciphertext (still base64).
  auto text = envelope.at("ciphertext").template get<std::string>();
  text[0] = text[0] == 'A' ? 'B' : 'A';
  envelope["ciphertext"] = text;
  const auto event_id = annals::EventId::generate();
  std::vector<annals::NewEvent> events;
  events.push_back(annals::NewEvent{.id = event_id,
                                    .type = std::string(NoteTaken::kTypeName),
                                    .schema_version = 1,
                                    .data = {{"text", envelope}},
                                    .metadata = nlohmann::json::object()});
  static_cast<void>(
      this->store_->append(stream, annals::ExpectedVersion::no_stream(), std::move(events)));

  const auto stored = this->store_->read_stream(stream);
  ASSERT_EQ(stored.size(), 1U);
  try {
    static_cast<void>(this->registry_.template decode<std::variant<NoteTaken>>(stored[0]));
    FAIL() << "a tampered envelope decoded";
  } catch (const annals::TamperedPersonalDataError& e) {
    EXPECT_EQ(e.event_id(), event_id);
    EXPECT_EQ(e.field(), "text");
    EXPECT_EQ(e.stream(), stream.value());
    EXPECT_EQ(e.version(), 1);
    EXPECT_NE(std::string(e.what()).find(event_id.to_string()), std::string::npos) << e.what();
  }
  // A typed handler gets the same typed error, never a crash or a wrong value.
  annals::EventHandlers<> handlers(this->registry_);
  handlers.on<NoteTaken>([](const NoteTaken&) { ADD_FAILURE() << "handled a tampered event"; });
  EXPECT_THROW(static_cast<void>(handlers.dispatch(stored[0])), annals::TamperedPersonalDataError);
}

TYPED_TEST_P(PersonalDataSuite, EnvelopeMovedToAnotherSubjectDoesNotOpen) {
  const auto a = annals::StreamId("account-" + new_id());
  const auto b = annals::StreamId("account-" + new_id());
  auto envelope = this->personal_->seal(a.value(), "owner", "Ken Thompson");
  static_cast<void>(this->personal_->seal(b.value(), "owner", "x"));  // b has a key too
  envelope["subject"] = b.value();
  std::vector<annals::NewEvent> events;
  events.push_back(annals::NewEvent{.id = std::nullopt,
                                    .type = "AccountOpened",
                                    .schema_version = 1,
                                    .data = {{"owner", envelope}},
                                    .metadata = nlohmann::json::object()});
  static_cast<void>(this->store_->append(b, annals::ExpectedVersion::any(), std::move(events)));
  const auto stored = this->store_->read_stream(b);
  // The key id names a's key, which b does not have: unknown, so redacted (never a's name).
  const auto revealed = this->personal_->reveal(stored.back());
  ASSERT_TRUE(revealed);
  EXPECT_EQ(revealed->at("owner"), annals::kRedacted);
}

TYPED_TEST_P(PersonalDataSuite, ConcurrentFirstUseCreatesOneKey) {
  const std::string subject = "account-" + new_id();
  constexpr int kThreads = 8;
  std::barrier start(kThreads);
  std::vector<std::string> ids(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      const auto envelope = this->personal_->seal(subject, "owner", "n" + std::to_string(i));
      ids[static_cast<std::size_t>(i)] = envelope.at("key").template get<std::string>();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(this->keys_->forget(subject).key_ids, std::vector<std::string>{ids[0]});
}

TYPED_TEST_P(PersonalDataSuite, KeysNeverAppearInLogsOrErrors) {
  annals::testing::LogCapture log;
  const auto id = new_id();
  const auto stream = this->open(id, "Margaret Hamilton");
  const auto envelope = this->store_->read_stream(stream)[0].data.get_json().at("owner");
  const auto lookup =
      this->keys_->find(stream.value(), envelope.at("key").template get<std::string>());
  ASSERT_EQ(lookup.state, annals::SubjectKeyState::kLive);
  const std::string key_hex = hex_of(lookup.key->material);

  std::string errors;
  // A wrong master key, a tampered envelope, a missing field: every message, and the logs.
  auto wrapped_keys = TypeParam::make_keys();
  PersonalData wrapped(*wrapped_keys, *this->store_,
                       {.master_key = annals::MasterKey::from_text(kMasterHex)});
  static_cast<void>(wrapped.seal("account-" + new_id(), "owner", "x"));
  try {
    static_cast<void>(annals::MasterKey::from_text(std::string(kMasterHex).substr(2)));
  } catch (const annals::Error& e) {
    errors += e.what();
  }
  try {
    nlohmann::json data = {{"name", "x"}};
    this->personal_->seal_fields(data, stream.value(), {"owner"}, "AccountOpened");
  } catch (const annals::Error& e) {
    errors += e.what();
  }
  static_cast<void>(this->personal_->forget(stream.value()));
  annals::Repository<Account> accounts(*this->store_, this->registry_);
  EXPECT_EQ(accounts.load(id).state().owner, annals::kRedacted);

  const std::string logged = log.text();
  for (const auto& secret : {key_hex, std::string(kMasterHex)}) {
    EXPECT_EQ(logged.find(secret), std::string::npos);
    EXPECT_EQ(errors.find(secret), std::string::npos);
    EXPECT_EQ(errors.find(secret.substr(0, 16)), std::string::npos);
  }
  EXPECT_NE(logged.find("forgot the subject"), std::string::npos) << logged;
  EXPECT_FALSE(errors.empty());
}

TYPED_TEST_P(PersonalDataSuite, MasterKeyWrapsStoredKeysAndAWrongOneIsReported) {
  const std::string subject = "account-" + new_id();
  PersonalData wrapped(*this->keys_, *this->store_,
                       {.master_key = annals::MasterKey::from_text(kMasterHex)});
  const auto envelope = wrapped.seal(subject, "owner", "Frances Allen");
  const auto lookup = this->keys_->find(subject, envelope.at("key").template get<std::string>());
  ASSERT_EQ(lookup.state, annals::SubjectKeyState::kLive);
  EXPECT_NE(lookup.key->material.size(), 32U);  // nonce + wrapped key + tag
  EXPECT_TRUE(lookup.key->wrapping.starts_with("master:")) << lookup.key->wrapping;

  PersonalData other(*this->keys_, *this->store_,
                     {.master_key = annals::MasterKey::from_text(kOtherMasterHex)});
  EXPECT_THROW(static_cast<void>(other.seal(subject, "owner", "x")), annals::InvalidArgumentError);
  // Without any master key: refused too, never read as forgotten.
  EXPECT_THROW(static_cast<void>(this->personal_->seal(subject, "owner", "x")),
               annals::InvalidArgumentError);
  // The same master key in base64 opens it.
  const auto again = PersonalData(*this->keys_, *this->store_,
                                  {.master_key = annals::MasterKey::from_text(
                                       "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=")})
                         .seal(subject, "owner", "y");
  EXPECT_EQ(again.at("key"), envelope.at("key"));
}

TYPED_TEST_P(PersonalDataSuite, DeclaredFieldMissingOrNoKeysWritesNothing) {
  annals::EventRegistry bare;
  bare.register_events<Account>();
  bare.personal_data<bank::AccountOpened>({"owner", "email"});  // AccountOpened has no email
  bare.use_personal_data(*this->personal_);
  annals::Repository<Account> accounts(*this->store_, bare);
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "Niklaus Wirth"});
  EXPECT_THROW(static_cast<void>(accounts.save(account)), annals::InvalidArgumentError);
  EXPECT_TRUE(this->store_->read_stream(accounts.stream_of(id)).empty());

  annals::EventRegistry no_keys;
  no_keys.register_events<Account>();
  no_keys.personal_data<bank::AccountOpened>({"owner"});
  annals::Repository<Account> without(*this->store_, no_keys);
  auto other = without.load(id);
  other.execute(bank::OpenAccount{id, "Niklaus Wirth"});
  EXPECT_THROW(static_cast<void>(without.save(other)), annals::InvalidArgumentError);
  EXPECT_TRUE(this->store_->read_stream(accounts.stream_of(id)).empty());
}

// A snapshot holds the aggregate's state in clear, the owner included: forgetting the subject
// (the account's stream, the default subject) removes it, so no load serves the name from it;
// the next load replays the events, redacted, and a snapshot taken after that holds the marker.
TYPED_TEST_P(PersonalDataSuite, ForgetRemovesTheSnapshotThatHoldsTheDataInClear) {
  auto snapshots = TypeParam::make_snapshots();
  PersonalData personal(*this->keys_, *this->store_, {.snapshots = snapshots.get()});
  annals::Repository<Account> accounts(
      *this->store_, this->registry_,
      {.snapshots = snapshots.get(), .snapshot_policy = annals::SnapshotPolicy::every(1)});
  const auto id = new_id();
  const auto stream = accounts.stream_of(id);
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "Alan Turing"});
  static_cast<void>(accounts.save(account));
  const auto before = snapshots->load(stream);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->state.at("owner"), "Alan Turing");  // in clear: why it must go

  const auto result = personal.forget(stream.value());
  EXPECT_TRUE(result.snapshot_removed);
  EXPECT_FALSE(snapshots->load(stream).has_value());
  auto after = accounts.load(id);
  EXPECT_EQ(after.state().owner, annals::kRedacted);
  after.execute(bank::Deposit{id, 5});
  static_cast<void>(accounts.save(after));  // takes a new snapshot, of the redacted state
  const auto retaken = snapshots->load(stream);
  ASSERT_TRUE(retaken.has_value());
  EXPECT_EQ(retaken->state.at("owner"), annals::kRedacted);
  EXPECT_EQ(accounts.load(id).state().owner, annals::kRedacted);
  // Without a snapshot store the result says nothing was removed.
  EXPECT_FALSE(this->personal_->forget(stream.value()).snapshot_removed);
}

REGISTER_TYPED_TEST_SUITE_P(PersonalDataSuite, OwnerIsStoredEncryptedAndLoadsInClear,
                            ForgottenOwnerReplaysAsRedactedOnEveryLoad,
                            ReadModelErasesItsCopyWhenItHandlesTheSignal, ForgettingTwiceIsHarmless,
                            TamperedCiphertextIsATypedErrorNamingTheEvent,
                            EnvelopeMovedToAnotherSubjectDoesNotOpen,
                            ConcurrentFirstUseCreatesOneKey, KeysNeverAppearInLogsOrErrors,
                            MasterKeyWrapsStoredKeysAndAWrongOneIsReported,
                            DeclaredFieldMissingOrNoKeysWritesNothing,
                            ForgetRemovesTheSnapshotThatHoldsTheDataInClear);

}  // namespace personal_data_suite
