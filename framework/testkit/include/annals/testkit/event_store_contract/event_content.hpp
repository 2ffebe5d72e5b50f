// EventStore contract, event content: what a store refuses before writing anything (sizes,
// counts, type names, schema versions, metadata shape, invalid UTF-8, NUL) and what it gives
// back verbatim (any JSON value, unicode and SQL metacharacters, the recording time).
//
// Part of the EventStore contract (annals/testkit/event_store_contract.hpp, which registers
// every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"

// ---- Validation and limits ----------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, OversizedDataThrowsInvalidArgumentErrorAndWritesNothing) {
  const auto s = this->stream("a");
  const std::size_t limit = annals::AppendLimits{}.max_data_bytes;
  auto batch = this->events(2);
  batch[1].data = std::string(limit, 'x');  // serialized with its quotes: limit + 2 bytes
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "data");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);

  batch[1].data = std::string(limit - 2, 'x');  // exactly at the limit
  this->append(s, annals::ExpectedVersion::any(), batch);
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].data, batch[1].data);
}

TYPED_TEST_P(EventStoreContract, OversizedMetadataThrowsInvalidArgumentErrorAndWritesNothing) {
  const auto s = this->stream("a");
  auto batch = this->events(1);
  batch[0].metadata = {{"blob", std::string(annals::AppendLimits{}.max_metadata_bytes, 'm')}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "metadata");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, TooManyEventsThrowInvalidArgumentErrorAndWriteNothing) {
  const auto s = this->stream("a");
  const std::size_t limit = annals::AppendLimits{}.max_events_per_append;
  std::vector<annals::NewEvent> batch(limit + 1, this->event("Tiny"));
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                std::to_string(limit + 1));
  this->expect_invalid_argument(
      [&] {
        this->append_multi({{.stream_id = s,
                             .expected = annals::ExpectedVersion::any(),
                             .events = std::vector<annals::NewEvent>(limit, this->event("Tiny"))},
                            {.stream_id = this->stream("b"),
                             .expected = annals::ExpectedVersion::any(),
                             .events = this->events(1)}});
      },
      std::to_string(limit + 1));
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
  EXPECT_TRUE(this->read_own().empty());
}

TYPED_TEST_P(EventStoreContract, EmptyAppendThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), {}); },
                                s.value());
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, MetadataThatIsNotAnObjectThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  for (const auto& metadata : {nlohmann::json::array({1, 2}), nlohmann::json("text"),
                               nlohmann::json(nullptr), nlohmann::json(5)}) {
    auto batch = this->events(1);
    batch[0].metadata = metadata;
    this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                  "metadata");
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, BadTypeNameThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  for (const std::string& type :
       {std::string(), std::string("Line\nBreak"), std::string("Tab\tbed"), std::string(257, 'T'),
        std::string("Bad\xff"
                    "Utf8"),
        std::string("Nul\0Byte", 8)}) {
    this->expect_invalid_argument(
        [&] { this->append(s, annals::ExpectedVersion::any(), {this->event(type)}); }, "type");
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
  // The longest allowed name is accepted.
  this->append(s, annals::ExpectedVersion::any(), {this->event(std::string(256, 'T'))});
  EXPECT_EQ(this->store().read_stream(s).at(0).type, std::string(256, 'T'));
}

TYPED_TEST_P(EventStoreContract, SchemaVersionBelowOneThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  for (std::int32_t version : {0, -1}) {
    auto batch = this->events(1);
    batch[0].schema_version = version;
    this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                  "schema_version");
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, InvalidUtf8InDataThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  auto batch = this->events(1);
  batch[0].data = {{"text", "caf\xc3"}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "data");
  batch = this->events(1);
  batch[0].metadata = {{"bad\xff", 1}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "metadata");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, NulCharacterInDataThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  auto batch = this->events(1);
  batch[0].data = {{"text", std::string("a\0b", 3)}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "U+0000");
  batch[0].data = {{std::string("k\0", 2), 1}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "U+0000");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, InvalidLaterEventWritesNothing) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  auto batch = this->events(3);
  batch[2].type = "";
  this->expect_invalid_argument([&] { this->append(a, annals::ExpectedVersion::any(), batch); },
                                "event 2");
  this->expect_invalid_argument(
      [&] {
        this->append_multi(
            {{.stream_id = a,
              .expected = annals::ExpectedVersion::any(),
              .events = this->events(2)},
             {.stream_id = b, .expected = annals::ExpectedVersion::any(), .events = batch}});
      },
      b.value());
  EXPECT_TRUE(this->read_own().empty());
}

// ---- Round trips --------------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, DataMayBeAnyJsonValue) {
  const auto s = this->stream("a");
  const std::vector<nlohmann::json> values{nlohmann::json::array({1, "two", nullptr}),
                                           nlohmann::json("just text"),
                                           nlohmann::json(42),
                                           nlohmann::json(-2.5),
                                           nlohmann::json(nullptr),
                                           nlohmann::json(true),
                                           nlohmann::json::object()};
  std::vector<annals::NewEvent> batch;
  for (const auto& value : values) batch.push_back(this->event("Value", value));
  this->append(s, annals::ExpectedVersion::any(), batch);
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(log[i].data, values[i]) << i;
}

TYPED_TEST_P(EventStoreContract, UnicodeAndSqlMetacharactersRoundTripVerbatim) {
  const std::string tricky = "ünï'cödé\"; DROP TABLE events;-- \\ % _ $1 😀 日本語";
  const annals::StreamId s(this->category() + "-" + tricky);
  const std::string type =
      "Typ'e\"; --"
      "\\ 😀";
  const nlohmann::json data = {
      {"text", tricky},
      {tricky, {{"nested", tricky}, {"list", {tricky, "", "\\u0041", "line\nbreak\ttab"}}}},
      {"numbers", {0, -7, 123456789012345LL, 3.25, -0.5}},
      {"flags", {true, false, nullptr}}};
  const nlohmann::json metadata = {{"note", tricky}, {"empty", nlohmann::json::object()}};
  auto event = this->event(type, data);
  event.metadata = metadata;
  this->append(s, annals::ExpectedVersion::no_stream(), {event});
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].stream_id.value(), s.value());
  EXPECT_EQ(log[0].type, type);
  EXPECT_EQ(log[0].data, data);
  EXPECT_EQ(log[0].metadata, metadata);
  EXPECT_EQ(this->store().stream_version(s), 1);
  const auto all = this->read_own();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], log[0]);
}

TYPED_TEST_P(EventStoreContract, RecordedAtIsWithinTheAppendWindow) {
  const auto s = this->stream("a");
  // Stores may keep only microseconds and read the clock on another host: allow a margin.
  const auto slack = std::chrono::seconds(2);
  const auto before = std::chrono::system_clock::now();
  this->append(s, annals::ExpectedVersion::any(), this->events(3));
  const auto after = std::chrono::system_clock::now();
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 3u);
  for (const auto& event : log) {
    EXPECT_GE(event.recorded_at, before - slack);
    EXPECT_LE(event.recorded_at, after + slack);
    EXPECT_EQ(event.recorded_at, log[0].recorded_at) << "events of one append share the time";
  }
}
