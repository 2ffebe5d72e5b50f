// Part of the framework suite (framework_suite.hpp, which registers every part's tests with
// GoogleTest): upcasting of stored events (old schemas read as the current one; unknown types and
// JSON that does not fit are typed errors naming the event). Include framework_suite.hpp, not this
// one.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/framework/metadata.hpp"
#include "fixture.hpp"
#include "wallet.hpp"

namespace framework_suite {

TYPED_TEST_P(FrameworkSuite, OldEventsAreReadAsTheCurrentSchema) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto id = new_id();
  const StreamId stream("wallet-" + id);
  // As older releases wrote them: v1 and v2, under old names, one to be split.
  this->store().append(stream, annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "ann"}, {"initial", 5}}),
                        wallet::raw("FundsAdded", 1, {{"amount", 3}}),
                        wallet::raw("FundsAdded", 2, {{"amount_cents", 250}})});
  // And what this release writes (v3).
  Repository<wallet::Wallet> wallets(this->store(), registry);
  auto w = wallets.load(id);
  w.execute(wallet::Credit{id, 100});
  wallets.save(w);

  const auto stored = this->read(stream);
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(stored[0].type, "WalletOpenedWithFunds");  // never rewritten
  EXPECT_EQ(stored[0].schema_version, 1);
  using V = wallet::Wallet::Event;
  EXPECT_EQ(registry.decode<V>(stored[0]), (std::vector<V>{wallet::WalletCreated{"ann", "EUR"},
                                                           wallet::WalletCredited{500, "EUR"}}));
  EXPECT_EQ(registry.decode<V>(stored[1]), (std::vector<V>{wallet::WalletCredited{300, "EUR"}}));
  EXPECT_EQ(registry.decode<V>(stored[2]), (std::vector<V>{wallet::WalletCredited{250, "EUR"}}));
  EXPECT_EQ(registry.decode<V>(stored[3]), (std::vector<V>{wallet::WalletCredited{100, "EUR"}}));
  EXPECT_EQ(stored[3].type, "WalletCredited");
  EXPECT_EQ(stored[3].schema_version, 3);

  const auto loaded = wallets.load(id);
  EXPECT_EQ(loaded.version(), 4);
  EXPECT_EQ(loaded.state(), (wallet::Wallet::State{"ann", "EUR", 1150, 4}));
  // Metadata passes through upcasting untouched.
  EXPECT_EQ(annals::EventMetadata::of(stored[1]).extra,
            nlohmann::json({{"traceparent", "00-old-release-01"}}));
}

TYPED_TEST_P(FrameworkSuite, EveryOldVersionOfOneTypeReachesTheCurrentOne) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto b = new_id();
  const auto c = new_id();
  this->store().append(StreamId("wallet-" + b), annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 1, {{"owner", "bob"}})});
  this->store().append(StreamId("wallet-" + c), annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 2, {{"owner", "cy"}, {"currency", "USD"}})});
  Repository<wallet::Wallet> wallets(this->store(), registry);
  EXPECT_EQ(wallets.load(b).state(), (wallet::Wallet::State{"bob", "EUR", 0, 0}));
  EXPECT_EQ(wallets.load(c).state(), (wallet::Wallet::State{"cy", "USD", 0, 0}));
  const auto upcast = registry.upcast_event(this->read(StreamId("wallet-" + b))[0]);
  EXPECT_EQ(upcast, (std::vector<annals::UpcastEvent>{
                        {"WalletCreated", 3, {{"owner_name", "bob"}, {"currency", "EUR"}}}}));
}

TYPED_TEST_P(FrameworkSuite, UnknownStoredTypeIsATypedErrorNamingTypeStreamAndVersion) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto id = new_id();
  const StreamId stream("wallet-" + id);
  this->store().append(stream, annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 3, {{"owner_name", "d"}, {"currency", "EUR"}}),
                        wallet::raw("WalletFrozen", 1, {{"why", "audit"}})});
  Repository<wallet::Wallet> wallets(this->store(), registry);
  try {
    (void)wallets.load(id);
    FAIL() << "expected UnknownEventTypeError";
  } catch (const annals::UnknownEventTypeError& e) {
    EXPECT_EQ(e.code(), annals::ErrorCode::kNotFound);
    EXPECT_EQ(e.type(), "WalletFrozen");
    EXPECT_EQ(e.schema_version(), 1);
    EXPECT_EQ(e.stream(), stream.value());
    EXPECT_EQ(e.version(), 2);
  }
  // The raw event is still readable.
  EXPECT_EQ(this->read(stream)[1].type, "WalletFrozen");
}

TYPED_TEST_P(FrameworkSuite, StoredJsonThatDoesNotFitIsACorruptionErrorNamingTheEvent) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto id = new_id();
  const StreamId stream("wallet-" + id);
  this->store().append(stream, annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 3, {{"owner_name", 42}}),
                        wallet::raw("FundsAdded", 1, {{"amount", "three"}})});
  using V = wallet::Wallet::Event;
  const auto stored = this->read(stream);
  try {
    (void)registry.decode<V>(stored[0]);
    FAIL() << "expected CorruptionError";
  } catch (const annals::CorruptionError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("\"WalletCreated\" v3"), std::string::npos) << message;
    EXPECT_NE(message.find("version 1 of stream \"" + stream.value() + "\""), std::string::npos)
        << message;
  }
  try {
    (void)registry.decode<V>(stored[1]);
    FAIL() << "expected CorruptionError";
  } catch (const annals::CorruptionError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("upcaster from \"FundsAdded\" v1"), std::string::npos) << message;
    EXPECT_NE(message.find("version 2 of stream"), std::string::npos) << message;
  }
}

}  // namespace framework_suite
