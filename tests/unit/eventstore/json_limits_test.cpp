// The JSON depth limit (annals/eventstore/json_limits.hpp) on every path of the event store
// that takes JSON in: JSON nested 100,000 deep, as arrays and as objects, is refused with an
// InvalidArgumentError naming its depth and the limit, never a stack overflow (nlohmann's
// dump(), copy and == recurse once per level; its parser and destructor do not, so the tests
// can build such values). The stored-JSON decoder refuses it, so a stored row that deep is
// an undecodable event; appends and snapshots refuse it before serializing.
#include "annals/eventstore/json_limits.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/stored_event.hpp"
#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"

namespace {

using annals::InvalidArgumentError;
using annals::kMaxJsonDepth;
using nlohmann::json;

constexpr std::size_t kDeep = 100'000;

std::string deep_array(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

std::string deep_object(std::size_t depth) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i) text += "{\"a\":";
  text += "1";
  text += std::string(depth, '}');
  return text;
}

// The message of the InvalidArgumentError `run` throws; fails the test when it throws none.
template <typename F>
std::string refusal_of(F run) {
  try {
    run();
  } catch (const InvalidArgumentError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InvalidArgumentError";
  return "";
}

void expect_names_depth_and_limit(const std::string& message, std::size_t depth) {
  EXPECT_NE(message.find("nested " + std::to_string(depth) + " levels deep"), std::string::npos)
      << message;
  EXPECT_NE(message.find("limit of " + std::to_string(kMaxJsonDepth) + " levels"),
            std::string::npos)
      << message;
}

TEST(JsonDepthTest, TextDepthCountsBracketsOutsideStringsOnly) {
  EXPECT_EQ(annals::json_text_depth(""), 0u);
  EXPECT_EQ(annals::json_text_depth("1"), 0u);
  EXPECT_EQ(annals::json_text_depth("[]"), 1u);
  EXPECT_EQ(annals::json_text_depth("{\"a\": [[1], {\"b\": []}]}"), 4u);
  EXPECT_EQ(annals::json_text_depth("[\"[[[\\\"[[\", \"{{{\"]"), 1u);
  EXPECT_EQ(annals::json_text_depth("]]]][["), 2u);  // stray closing brackets are ignored
  EXPECT_EQ(annals::json_text_depth(deep_array(kDeep)), kDeep);
  EXPECT_EQ(annals::json_text_depth(deep_object(kDeep)), kDeep);
}

TEST(JsonDepthTest, ValueDepthMatchesTheTextsWithoutRecursion) {
  EXPECT_EQ(annals::json_depth(json(1)), 0u);
  EXPECT_EQ(annals::json_depth(json::parse("{\"a\": [[1], {\"b\": []}]}")), 4u);
  EXPECT_EQ(annals::json_depth(json::parse(deep_array(kDeep))), kDeep);
  EXPECT_EQ(annals::json_depth(json::parse(deep_object(kDeep))), kDeep);
}

TEST(JsonDepthTest, ChecksAcceptTheLimitAndRefuseOneLevelMore) {
  EXPECT_NO_THROW(annals::check_json_text_depth(deep_array(kMaxJsonDepth), "x"));
  EXPECT_NO_THROW(annals::check_json_depth(json::parse(deep_object(kMaxJsonDepth)), "x"));
  const auto message = refusal_of(
      [] { annals::check_json_text_depth(deep_array(kMaxJsonDepth + 1), "standard input"); });
  EXPECT_EQ(message, "standard input is JSON nested 513 levels deep, over the limit of 512 levels");
  expect_names_depth_and_limit(
      refusal_of([] { annals::check_json_depth(json::parse(deep_object(kDeep)), "x"); }), kDeep);
}

TEST(StoredJsonDepthTest, RefusesJsonNested100000DeepAsArraysAndObjects) {
  for (const auto& text : {deep_array(kDeep), deep_object(kDeep)}) {
    expect_names_depth_and_limit(
        refusal_of([&] { static_cast<void>(annals::detail::parse_stored_json(text)); }), kDeep);
  }
}

TEST(StoredJsonDepthTest, AcceptsTheLimitOnTheFastAndTheSlowPath) {
  // "\u0000" makes the fast path give up and nlohmann decide (the slow path).
  for (const std::string inner : {"1", "\"\\u0000\""}) {
    SCOPED_TRACE(inner);
    const auto at_limit = std::string(kMaxJsonDepth, '[') + inner + std::string(kMaxJsonDepth, ']');
    EXPECT_EQ(annals::json_depth(annals::detail::parse_stored_json(at_limit)), kMaxJsonDepth);
    const auto over = "[" + at_limit + "]";
    expect_names_depth_and_limit(
        refusal_of([&] { static_cast<void>(annals::detail::parse_stored_json(over)); }),
        kMaxJsonDepth + 1);
  }
}

annals::detail::StoredEventColumns columns(std::string_view data, std::string_view metadata) {
  return annals::detail::StoredEventColumns{.stream_id = "deep-1",
                                            .version = 1,
                                            .position = annals::Position(1, 1),
                                            .id = annals::EventId::generate(),
                                            .type = "Deep",
                                            .schema_version = 1,
                                            .data = data,
                                            .metadata = metadata};
}

TEST(StoredJsonDepthTest, ARowWithDataOrMetadataTooDeepIsUndecodable) {
  const auto array = deep_array(kDeep);
  const auto object = deep_object(kDeep);
  const auto deep_data = annals::detail::decode_stored_event(columns(array, "{}"), nullptr);
  ASSERT_TRUE(deep_data.is_undecodable());
  EXPECT_NE(deep_data.decode_failure->reason.find("stored data is refused"), std::string::npos);
  expect_names_depth_and_limit(deep_data.decode_failure->reason, kDeep);
  EXPECT_EQ(deep_data.decode_failure->data, array);  // the stored text, kept as it is
  EXPECT_TRUE(deep_data.data.is_null());

  const auto deep_metadata = annals::detail::decode_stored_event(columns("{}", object), nullptr);
  ASSERT_TRUE(deep_metadata.is_undecodable());
  EXPECT_NE(deep_metadata.decode_failure->reason.find("stored metadata is refused"),
            std::string::npos);
  EXPECT_EQ(deep_metadata.metadata, json::object());
}

// One event whose data or metadata is `text` parsed, in a vector built without copying the
// value (a copy of JSON 100,000 deep would itself overflow the stack).
std::vector<annals::NewEvent> one_event(const std::string& text, bool as_metadata) {
  std::vector<annals::NewEvent> events(1);
  events[0].type = "Deep";
  if (as_metadata) {
    events[0].metadata["deep"] = json::parse(text);
  } else {
    events[0].data = json::parse(text);
  }
  return events;
}

TEST(AppendDepthTest, AppendsOfDataOrMetadataTooDeepAreRefusedNamingTheDepth) {
  const auto store = annals::make_in_memory_event_store();
  const annals::StreamId stream("deep-2");
  for (const auto& text : {deep_array(kDeep), deep_object(kDeep)}) {
    const auto data_message = refusal_of([&] {
      static_cast<void>(
          store->append(stream, annals::ExpectedVersion::any(), one_event(text, false)));
    });
    expect_names_depth_and_limit(data_message, kDeep);
    EXPECT_NE(data_message.find("data is JSON nested"), std::string::npos) << data_message;
    const auto metadata_message = refusal_of([&] {
      static_cast<void>(
          store->append(stream, annals::ExpectedVersion::any(), one_event(text, true)));
    });
    expect_names_depth_and_limit(metadata_message, kDeep + 1);
    EXPECT_NE(metadata_message.find("metadata is JSON nested"), std::string::npos)
        << metadata_message;
  }
  EXPECT_TRUE(store->read_stream(stream, {}).empty());
}

TEST(AppendDepthTest, DataAtTheLimitIsStoredAndReadBack) {
  const auto store = annals::make_in_memory_event_store();
  const annals::StreamId stream("deep-3");
  static_cast<void>(store->append(stream, annals::ExpectedVersion::any(),
                                  one_event(deep_array(kMaxJsonDepth), false)));
  const auto events = store->read_stream(stream, {});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(annals::json_depth(events[0].data), kMaxJsonDepth);
}

TEST(SnapshotDepthTest, ASnapshotStateTooDeepIsRefusedNamingTheDepth) {
  const annals::Snapshot snapshot{.stream_id = annals::StreamId("deep-4"),
                                  .version = 1,
                                  .schema_version = 1,
                                  .state = json::parse(deep_object(kDeep))};
  expect_names_depth_and_limit(
      refusal_of([&] { static_cast<void>(annals::detail::encode_snapshot_state(snapshot)); }),
      kDeep);
}

}  // namespace
