// EventStore contract, JSON text: data and metadata appended as text (NewEvent::data_json,
// metadata_json) are the same events as the trees the text parses to (read back, re-sent in
// either form), and text a tree could not be (malformed, trailing text, too deep, too big,
// metadata not an object, U+0000, invalid UTF-8, unpaired surrogates, numbers no double or no
// PostgreSQL numeric can hold, both forms set) is refused before anything is written.
//
// Part of the EventStore contract (annals/testkit/event_store_contract.hpp, which registers
// every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"

namespace annals::testkit::contract_detail {

/// An event whose data (and, when given, metadata) is JSON text.
inline NewEvent text_event(std::string data_json,
                           std::optional<std::string> metadata_json = std::nullopt) {
  NewEvent event;
  event.type = "Texted";
  event.data_json = std::move(data_json);
  event.metadata_json = std::move(metadata_json);
  return event;
}

/// `levels` nested arrays: "[[...]]".
inline std::string nested_arrays(std::size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

}  // namespace annals::testkit::contract_detail

// ---- Round trips --------------------------------------------------------------------------

// Text reads back as the tree it parses to, on the batch path and on the single-event path,
// and equals what the same events appended as trees read back as.
TYPED_TEST_P(EventStoreContract, JsonTextReadsBackAsTheTreeItParsesTo) {
  using annals::testkit::contract_detail::text_event;
  const std::vector<std::string> texts{
      R"({"account_id": "account-1", "amount_cents": 1250, "tags": ["a", "b"], "n": null})",
      " \n\t{ \"spaced\" : [ 1 , 2 ] , \"nested\" : { \"deep\" : { } } }\r\n",
      R"({"escapes": "quote \" backslash \\ slash \/ \b\f\n\r\t", "e": "caf\u00e9 \ud83d\ude00"})",
      "{\"raw\": \"ünïcödé 😀 日本語 \x7f\", \"sql\": \"'; DROP TABLE events;--\"}",
      R"({"numbers": [0, -7, 1.5e3, 3.25, -0.5, 1E-5, 18446744073709551615, -9223372036854775808]})",
      R"({"big": 123456789012345678901234567890, "tiny": 2.5e-310})",
      R"({"twice": 1, "twice": 2})",  // the last of duplicate keys wins, as in both parsers
      R"("just text")",
      "42",
      "-2.5",
      "null",
      "true",
      "[]",
      "{}"};
  const std::string metadata = R"({"correlation_id": "c-1", "nested": {"k": [true, false]}})";

  std::vector<annals::NewEvent> as_text;
  std::vector<annals::NewEvent> as_tree;
  for (const auto& text : texts) {
    as_text.push_back(text_event(text, metadata));
    auto tree = this->event("Texted", nlohmann::json::parse(text));
    tree.metadata = nlohmann::json::parse(metadata);
    as_tree.push_back(std::move(tree));
  }
  const auto batch_text = this->stream("batch-text");
  const auto batch_tree = this->stream("batch-tree");
  const auto single_text = this->stream("single-text");
  this->append(batch_text, annals::ExpectedVersion::no_stream(), as_text);
  this->append(batch_tree, annals::ExpectedVersion::no_stream(), as_tree);
  for (const auto& event : as_text) {
    this->append(single_text, annals::ExpectedVersion::any(), {event});
  }

  for (const auto& s : {batch_text, single_text}) {
    const auto log = this->store().read_stream(s);
    const auto trees = this->store().read_stream(batch_tree);
    ASSERT_EQ(log.size(), texts.size()) << s.value();
    ASSERT_EQ(trees.size(), texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      EXPECT_FALSE(log[i].is_undecodable()) << texts[i];
      EXPECT_EQ(log[i].data, nlohmann::json::parse(texts[i])) << texts[i];
      EXPECT_EQ(log[i].data, trees[i].data) << texts[i];
      EXPECT_EQ(log[i].metadata, nlohmann::json::parse(metadata)) << texts[i];
      EXPECT_EQ(log[i].type, "Texted");
    }
  }
  EXPECT_EQ(this->store().read_stream(batch_text)[6].data, (nlohmann::json{{"twice", 2}}));
}

// Data as text with metadata as a tree, and the other way round.
TYPED_TEST_P(EventStoreContract, JsonTextAndTreeMixWithinOneEvent) {
  const auto s = this->stream("a");
  annals::NewEvent data_text = this->event("Mixed");
  data_text.data_json = R"({"x": 1})";
  data_text.metadata = {{"m", "tree"}};
  annals::NewEvent metadata_text = this->event("Mixed", {{"x", 2}});
  metadata_text.metadata_json = R"({"m": "text"})";
  this->append(s, annals::ExpectedVersion::no_stream(), {data_text, metadata_text});
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].data, (nlohmann::json{{"x", 1}}));
  EXPECT_EQ(log[0].metadata, (nlohmann::json{{"m", "tree"}}));
  EXPECT_EQ(log[1].data, (nlohmann::json{{"x", 2}}));
  EXPECT_EQ(log[1].metadata, (nlohmann::json{{"m", "text"}}));
}

// ---- Re-sends across forms ----------------------------------------------------------------

// A re-send may carry the same content in the other form: tree then text (other key order and
// spacing), text then tree, text then other text. A changed re-send is refused in either form.
TYPED_TEST_P(EventStoreContract, ResendInTheOtherJsonFormIsExact) {
  using annals::testkit::contract_detail::text_event;
  const nlohmann::json data = {{"a", 1}, {"b", {{"c", {1, 2}}, {"d", "x"}}}, {"f", 2.5}};
  const nlohmann::json metadata = {{"correlation_id", "c-1"}, {"actor", "me"}};
  const std::string reordered_data = R"({ "f" : 2.5, "b": {"d": "x", "c": [1,2]}, "a": 1 })";
  const std::string reordered_metadata = "{\"actor\":\"me\",\n \"correlation_id\":\"c-1\"}";

  // Tree first, then text.
  const auto a = this->stream("a");
  const auto ids = this->new_ids(2);
  std::vector<annals::NewEvent> tree_batch;
  std::vector<annals::NewEvent> text_batch;
  for (const auto& id : ids) {
    auto tree = this->event("Texted", data);
    tree.metadata = metadata;
    tree.id = id;
    tree_batch.push_back(tree);
    auto text = text_event(reordered_data, reordered_metadata);
    text.id = id;
    text_batch.push_back(text);
  }
  const auto original = this->append(a, annals::ExpectedVersion::no_stream(), tree_batch);
  EXPECT_EQ(this->append(a, annals::ExpectedVersion::no_stream(), text_batch), original);

  // Text first, then tree, then the text again; one event, so the single-event path too.
  const auto b = this->stream("b");
  const auto single_id = annals::EventId::generate();
  auto single_text = text_batch[0];
  auto single_tree = tree_batch[0];
  single_text.id = single_tree.id = single_id;
  const auto first = this->append(b, annals::ExpectedVersion::no_stream(), {single_text});
  EXPECT_EQ(this->append(b, annals::ExpectedVersion::no_stream(), {single_tree}), first);
  EXPECT_EQ(this->append(b, annals::ExpectedVersion::no_stream(), {single_text}), first);

  // Changed content in text form is a changed re-send, naming the part.
  auto changed = text_batch;
  changed[1].data_json = R"({"a": 1, "b": {"c": [1, 2], "d": "x"}, "f": 2.5, "g": 0})";
  this->expect_idempotency_error(
      [&] { this->append(a, annals::ExpectedVersion::no_stream(), changed); },
      {ids[1].to_string(), a.value(), "version 2", "data"});
  single_text.metadata_json = R"({"actor": "someone else", "correlation_id": "c-1"})";
  this->expect_idempotency_error(
      [&] { this->append(b, annals::ExpectedVersion::no_stream(), {single_text}); },
      {single_id.to_string(), b.value(), "version 1", "metadata"});
  EXPECT_EQ(this->store().stream_version(a), 2);
  EXPECT_EQ(this->store().stream_version(b), 1);
}

// ---- Refused text -------------------------------------------------------------------------

// Each kind of text a tree could not be is refused with an InvalidArgumentError naming the
// stream, the event and the problem, and nothing is written, in a single append and in a
// multi-stream append.
TYPED_TEST_P(EventStoreContract, BadJsonTextIsRefusedAndWritesNothing) {
  using annals::testkit::contract_detail::nested_arrays;
  using annals::testkit::contract_detail::text_event;
  struct Bad {
    std::string text;
    std::string mention;
  };
  const std::size_t limit = annals::AppendLimits{}.max_data_bytes;
  const std::vector<Bad> bad{
      {R"({"a": })", "unexpected character '}' at byte offset 6"},
      {R"({"a": 1,})", "unexpected character '}'"},
      {R"({"a": 1} x)", "text after the JSON value, at byte offset 9"},
      {"1 2", "text after the JSON value"},
      {"", "ends at byte offset 0"},
      {"   ", "ends at byte offset 3"},
      {R"({"a": "open)", "ends at byte offset 11"},
      {"[1, 2", "ends at byte offset 5"},
      {"\xEF\xBB\xBF{}", "unexpected byte 0xEF at byte offset 0"},  // byte order mark
      {R"({"a": 1} // note)", "text after the JSON value"},
      {"{'a': 1}", "unexpected character '''"},
      {"[01]", "unexpected character '1'"},
      {"[.5]", "unexpected character '.'"},
      {"[1.]", "unexpected character ']'"},
      {"[NaN]", "unexpected character 'N'"},
      {"[True]", "unexpected character 'T'"},
      {"{\"a\": \"line\nbreak\"}", "control character U+000A"},
      {R"({"a": "\x41"})", "invalid escape sequence at byte offset 7"},
      {R"({"a": "\u12G4"})", "invalid \\u escape"},
      {nested_arrays(annals::kMaxJsonDepth + 1), "nested 513 levels deep, over the limit of 512"},
      {"\"" + std::string(limit - 1, 'x') + "\"", "is " + std::to_string(limit + 1) + " bytes"},
      {R"({"a": "x\u0000y"})", "U+0000"},
      {R"({"a\u0000": 1})", "U+0000"},
      {"{\"a\": \"caf\xC3\"}", "not valid UTF-8 (byte 0xC3 at byte offset 10)"},
      {"{\"a\": \"\xFF\"}", "not valid UTF-8 (byte 0xFF"},
      {"{\"a\": \"\xED\xA0\x80\"}", "not valid UTF-8 (byte 0xED"},  // a surrogate in UTF-8
      {"{\"a\": \"\xC0\xAF\"}", "not valid UTF-8 (byte 0xC0"},      // overlong
      {R"({"a": "\ud800"})", "\\uD800 at byte offset 7 is half of a UTF-16 surrogate pair"},
      {R"({"a": "\ud800\u0041"})", "\\uD800"},
      {R"({"a": "\udc00"})", "\\uDC00"},
      {R"({"a": 1e400})", "the number 1e400 at byte offset 6, which no double can hold"},
      {R"({"a": -1e400})", "no double can hold"},
      {R"({"a": 1e-400})", "the number 1e-400"},
      {"[" + std::string(400, '9') + "]", "no double can hold"},
      {"[1." + std::string(16384, '0') + "]", "which PostgreSQL's numeric type cannot hold"},
      {"[0e-16384]", "which PostgreSQL's numeric type cannot hold"},
      {"[0e1073741823]", "which PostgreSQL's numeric type cannot hold"},
  };
  const auto s = this->stream("a");
  const auto other = this->stream("b");
  for (const auto& [text, mention] : bad) {
    auto batch = this->events(2);
    batch[1] = text_event(text);
    this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                  mention);
    this->expect_invalid_argument(
        [&] { this->append(s, annals::ExpectedVersion::any(), batch); },
        "event 1 of the append to stream \"" + s.value() + "\": data_json");
    this->expect_invalid_argument(
        [&] { this->append(s, annals::ExpectedVersion::any(), {batch[1]}); }, mention);
    this->expect_invalid_argument(
        [&] {
          this->append_multi(
              {{.stream_id = other,
                .expected = annals::ExpectedVersion::any(),
                .events = this->events(1)},
               {.stream_id = s, .expected = annals::ExpectedVersion::any(), .events = batch}});
        },
        mention);
    // The same text as metadata is refused the same way.
    auto as_metadata = this->events(1);
    as_metadata[0].metadata_json = text;
    this->expect_invalid_argument(
        [&] { this->append(s, annals::ExpectedVersion::any(), as_metadata); }, "metadata_json");
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
  EXPECT_EQ(this->store().stream_version(other), std::nullopt);
  EXPECT_TRUE(this->read_own().empty());
}

TYPED_TEST_P(EventStoreContract, MetadataJsonThatIsNotAnObjectIsRefused) {
  const auto s = this->stream("a");
  for (const auto& [text, kind] :
       std::vector<std::pair<std::string, std::string>>{{"[1, 2]", "array"},
                                                        {R"("text")", "string"},
                                                        {" null", "null"},
                                                        {"5", "number"},
                                                        {"false", "boolean"}}) {
    auto batch = this->events(1);
    batch[0].metadata_json = text;
    this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                  "metadata_json must be a JSON object, got " + kind);
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

// A part set both as a tree and as text is refused, whichever the caller meant; a tree left at
// its default (an empty object) is not set.
TYPED_TEST_P(EventStoreContract, DataOrMetadataSetAsTreeAndTextIsRefused) {
  const auto s = this->stream("a");
  auto batch = this->events(2);
  batch[1].data = {{"tree", true}};
  batch[1].data_json = R"({"text": true})";
  this->expect_invalid_argument(
      [&] { this->append(s, annals::ExpectedVersion::any(), batch); },
      "event 1 of the append to stream \"" + s.value() + "\": it sets both data and data_json");
  batch[1].data = nlohmann::json::array();  // not the default either
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "both data and data_json");
  batch = this->events(1);
  batch[0].metadata = {{"tree", true}};
  batch[0].metadata_json = R"({"text": true})";
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "both metadata and metadata_json");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);

  batch = this->events(1);
  batch[0].data = nlohmann::json::object();
  batch[0].data_json = R"({"text": true})";
  this->append(s, annals::ExpectedVersion::no_stream(), batch);
  EXPECT_EQ(this->store().read_stream(s).at(0).data, (nlohmann::json{{"text", true}}));
}

// The limits themselves are accepted: text of exactly max_data_bytes and max_metadata_bytes
// bytes, nesting exactly kMaxJsonDepth levels deep, and numbers at PostgreSQL's numeric limits.
TYPED_TEST_P(EventStoreContract, JsonTextAtTheLimitsIsAccepted) {
  using annals::testkit::contract_detail::nested_arrays;
  using annals::testkit::contract_detail::text_event;
  const auto s = this->stream("a");
  const annals::AppendLimits limits;
  const std::string largest_data = "\"" + std::string(limits.max_data_bytes - 2, 'x') + "\"";
  const std::string largest_metadata =
      R"({"m": ")" + std::string(limits.max_metadata_bytes - 9, 'm') + "\"}";
  ASSERT_EQ(largest_metadata.size(), limits.max_metadata_bytes);
  const std::string deepest = nested_arrays(annals::kMaxJsonDepth);
  // The longest scale and the largest exponent PostgreSQL's numeric takes.
  const std::string numbers = "[1." + std::string(16383, '0') + ", 0e-16383, 0e1073741822]";
  this->append(
      s, annals::ExpectedVersion::no_stream(),
      {text_event(largest_data, largest_metadata), text_event(deepest), text_event(numbers)});
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].data, nlohmann::json::parse(largest_data));
  EXPECT_EQ(log[0].metadata, nlohmann::json::parse(largest_metadata));
  EXPECT_EQ(annals::json_depth(log[1].data), annals::kMaxJsonDepth);
  EXPECT_EQ(log[2].data, nlohmann::json::parse(numbers));
}
