// LazyJson (issue 14): stored text is parsed once, on first access, from any number of threads;
// it compares, copies and mutates like the nlohmann::json it stands for; and a reader keeps
// text unparsed only when parsing it could not have marked the event undecodable.
#include "annals/eventstore/lazy_json.hpp"

#include <cstddef>
#include <cstdint>
#include <latch>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/lazy_json_access.hpp"
#include "annals/eventstore/detail/stored_event.hpp"
#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/eventstore/types.hpp"

namespace {

using annals::LazyJson;
using annals::detail::is_lazy_stored_json;
using annals::detail::LazyJsonAccess;
using annals::detail::parse_stored_json;
using nlohmann::json;

// jsonb's text form: a blank after ':' and ',', keys by length then bytes.
constexpr std::string_view kStored =
    R"({"n": 7, "ok": true, "big": 18446744073709551615, "neg": -3, "tags": ["a", "b"], )"
    R"("when": 1.5, "nested": {"k": null}, "unicode": "Zo\u00eb \u2713"})";

LazyJson stored(std::string_view text) {
  EXPECT_TRUE(is_lazy_stored_json(text)) << text;
  return LazyJsonAccess::from_checked_text(std::string(text));
}

std::uint64_t parses() { return LazyJsonAccess::parses_on_this_thread(); }

TEST(LazyJsonTest, ParsesOnFirstAccessOnly) {
  const LazyJson value = stored(kStored);
  EXPECT_FALSE(value.is_parsed());
  const auto before = parses();
  EXPECT_EQ(value.at("n"), 7);
  EXPECT_TRUE(value.is_parsed());
  EXPECT_EQ(value["tags"][1], "b");
  EXPECT_EQ(value.size(), 8u);
  EXPECT_EQ(parses(), before + 1);
  // The text is still there after parsing, unchanged.
  ASSERT_TRUE(value.text().has_value());
  EXPECT_EQ(*value.text(), kStored);
}

TEST(LazyJsonTest, TextEqualityCopiesAndPrintingDoNotParse) {
  const LazyJson value = stored(kStored);
  const auto before = parses();
  EXPECT_EQ(*value.text(), kStored);
  const LazyJson copy = value;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_TRUE(copy == value);   // the same text: equal without parsing
  std::ostringstream out;
  out << value;
  EXPECT_EQ(out.str(), kStored);
  EXPECT_FALSE(value.is_parsed());
  EXPECT_FALSE(copy.is_parsed());
  EXPECT_EQ(parses(), before);
}

TEST(LazyJsonTest, ParsedValuesAndNumberTypesAreThoseOfTheStoreParser) {
  const LazyJson value = stored(kStored);
  const json expected = parse_stored_json(kStored);
  EXPECT_EQ(value, expected);
  EXPECT_EQ(value.dump(), expected.dump());
  EXPECT_TRUE(value["big"].is_number_unsigned());
  EXPECT_TRUE(value["neg"].is_number_integer());
  EXPECT_TRUE(value["when"].is_number_float());
  EXPECT_EQ(value["unicode"], "Zo\xC3\xAB \xE2\x9C\x93");
}

TEST(LazyJsonTest, EqualityHoldsAcrossForms) {
  const json parsed = {{"a", 1}, {"b", json::array({1, 2})}};
  const LazyJson as_text = stored(R"({"a": 1, "b": [1, 2]})");
  const LazyJson reordered = stored(R"({"b":[1,2],"a":1})");
  const LazyJson as_value = parsed;
  EXPECT_TRUE(as_text == parsed);
  EXPECT_TRUE(parsed == as_text);
  EXPECT_TRUE(as_text == as_value);
  EXPECT_TRUE(as_value == as_text);
  EXPECT_TRUE(as_text == reordered);  // other text, equal values
  EXPECT_FALSE(as_text != reordered);
  const LazyJson other = stored(R"({"a": 2, "b": [1, 2]})");
  EXPECT_FALSE(other == as_text);
  EXPECT_TRUE(other != parsed);
  EXPECT_TRUE(stored("2") == 2);
  EXPECT_TRUE(stored("1.0") == 1);  // as nlohmann: 1.0 == 1
  EXPECT_FALSE(stored("1.0") == stored("2"));
  EXPECT_TRUE(LazyJson() == nullptr);
}

TEST(LazyJsonTest, MutationParsesAndForgetsTheText) {
  LazyJson value = stored(R"({"a": 1})");
  const LazyJson before = value;
  value.mutable_json()["b"] = 2;
  EXPECT_FALSE(value.text().has_value());
  EXPECT_EQ(value, (json{{"a", 1}, {"b", 2}}));
  EXPECT_EQ(value.dump(), R"({"a":1,"b":2})");
  std::ostringstream out;
  out << value;  // no text: the dump
  EXPECT_EQ(out.str(), R"({"a":1,"b":2})");
  // The copy taken before is its own value, text and all.
  EXPECT_EQ(*before.text(), R"({"a": 1})");
  EXPECT_FALSE(before == value);
}

TEST(LazyJsonTest, CopiesAndMovesKeepWhatIsHeld) {
  const LazyJson text = stored(R"({"a": 1})");
  const LazyJson unparsed_copy = text;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_FALSE(unparsed_copy.is_parsed());
  (void)text.get_json();
  const auto before = parses();
  const LazyJson parsed_copy = text;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_TRUE(parsed_copy.is_parsed());
  EXPECT_EQ(parsed_copy.at("a"), 1);
  EXPECT_EQ(parses(), before);  // a parsed original is copied, not parsed again
  EXPECT_EQ(*parsed_copy.text(), R"({"a": 1})");

  LazyJson moved_from = stored(R"([1, 2])");
  LazyJson moved(std::move(moved_from));
  EXPECT_EQ(*moved.text(), "[1, 2]");
  EXPECT_EQ(moved, json::array({1, 2}));
  LazyJson assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned, json::array({1, 2}));
  assigned = text;
  EXPECT_EQ(assigned, (json{{"a", 1}}));
  assigned = assigned;  // NOLINT(clang-diagnostic-self-assign-overloaded)
  EXPECT_EQ(assigned, (json{{"a", 1}}));
}

TEST(LazyJsonTest, ReadsLikeAConstJson) {
  const LazyJson value = stored(kStored);
  const json& as_json = value;
  EXPECT_EQ(&as_json, &value.get_json());
  EXPECT_EQ(&*value, &as_json);
  EXPECT_EQ(value->size(), 8u);
  EXPECT_EQ(value.get_ptr<const json::object_t*>(), as_json.get_ptr<const json::object_t*>());
  EXPECT_EQ(value.get<json::object_t>().size(), 8u);
  EXPECT_EQ(value.value("n", 0), 7);
  EXPECT_EQ(value.value("missing", std::string("fallback")), "fallback");
  EXPECT_TRUE(value.contains("nested"));
  EXPECT_EQ(value.count("nested"), 1u);
  EXPECT_NE(value.find("n"), value.end());
  EXPECT_EQ(value.find("missing"), value.end());
  EXPECT_TRUE(value.is_object());
  EXPECT_FALSE(value.empty());
  std::size_t keys = 0;
  for (const auto& [key, element] : value.items()) {
    if (!key.empty() && !element.is_null()) ++keys;
  }
  EXPECT_EQ(keys, 8u);
  std::size_t elements = 0;
  for (const auto& element : value) {
    if (!element.is_null()) ++elements;
  }
  EXPECT_EQ(elements, 8u);
  EXPECT_THROW(static_cast<void>(value.at("missing")), json::out_of_range);
  const json copied = value;
  EXPECT_EQ(copied, as_json);
  const json wrapped = {{"data", value}};
  EXPECT_EQ(wrapped["data"], as_json);  // the value, not an array of its elements
  EXPECT_EQ(value["/nested/k"_json_pointer], nullptr);
}

TEST(LazyJsonTest, MissingKeysAndIndexesReadAsNull) {
  const LazyJson object = stored(R"({"a": 1})");
  EXPECT_TRUE(object["missing"].is_null());
  const LazyJson array = stored("[1, 2]");
  EXPECT_EQ(array[1], 2);
  EXPECT_TRUE(array[2].is_null());
  const LazyJson null;
  EXPECT_TRUE(null["any"].is_null());
  EXPECT_TRUE(null[0].is_null());
  EXPECT_THROW(static_cast<void>(array["key"]), json::type_error);
  EXPECT_THROW(static_cast<void>(object[0]), json::type_error);
}

TEST(LazyJsonTest, BuildsFromJsonAsRecordedEventFieldsDid) {
  annals::RecordedEvent event{.stream_id = annals::StreamId("account-1"),
                              .version = 1,
                              .position = {},
                              .id = {},
                              .type = "Opened",
                              .schema_version = 1,
                              .data = json{{"owner", "Ada"}},
                              .metadata = {{"correlation_id", "c-1"}},
                              .recorded_at = {},
                              .decode_failure = std::nullopt};
  EXPECT_TRUE(event.metadata.is_object());  // an initializer list builds an object, as in json
  EXPECT_EQ(event.metadata["correlation_id"], "c-1");
  event.data = {{"n", 1}};
  EXPECT_EQ(event.data, (json{{"n", 1}}));
  event.data = json::array({1});
  EXPECT_TRUE(event.data.is_array());
  EXPECT_FALSE(event.data.text().has_value());
  EXPECT_TRUE(event.data.is_parsed());
}

// Several threads reach an unparsed value at once: exactly one parses, every thread sees the
// same value at the same address. Run under ThreadSanitizer with the concurrency label, a
// second write of the value or a read before it is published would also be reported.
TEST(LazyJsonTest, ConcurrentFirstAccessParsesOnce) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    const LazyJson value = stored(kStored);
    std::latch start(kThreads);
    std::vector<const json*> seen(kThreads);
    std::vector<std::uint64_t> parsed(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const auto before = parses();
        start.arrive_and_wait();
        const json& result = t % 2 == 0 ? value.get_json() : *value;
        seen[static_cast<std::size_t>(t)] = &result;
        EXPECT_EQ(result.at("n"), 7);
        parsed[static_cast<std::size_t>(t)] = parses() - before;
      });
    }
    for (auto& thread : threads) thread.join();
    std::uint64_t total = 0;
    for (int t = 0; t < kThreads; ++t) {
      total += parsed[static_cast<std::size_t>(t)];
      EXPECT_EQ(seen[static_cast<std::size_t>(t)], &value.get_json());
    }
    ASSERT_EQ(total, 1u) << "round " << round;
  }
}

// Copies and equality are const access too: they may run while another thread parses.
TEST(LazyJsonTest, ConcurrentCopiesAndComparisonsAreSafe) {
  constexpr int kThreads = 8;
  const LazyJson value = stored(kStored);
  const json expected = parse_stored_json(kStored);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      if (t % 2 == 0) {
        const LazyJson copy = value;
        EXPECT_EQ(copy, expected);
      } else {
        EXPECT_EQ(value, expected);
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

// --- What a reader may keep as text -------------------------------------------------------

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(LazyStoredJsonTest, AcceptsWhatParsesAndRefusesTheRest) {
  for (const std::string& text :
       {std::string(kStored), std::string("{}"), std::string(" [ ] "), std::string("\"s\""),
        std::string("-0.5e-3"), std::string("1e300"), std::string(R"({"a": 1, "a": 2})"),
        std::string(R"("\ud83d\ude00")"), nested(annals::kMaxJsonDepth),
        "1" + std::string(299, '0')}) {
    SCOPED_TRACE(text.substr(0, 60));
    EXPECT_TRUE(is_lazy_stored_json(text));
    EXPECT_EQ(parse_stored_json(text), json::parse(text));
  }
  for (const std::string& text :
       {std::string(""), std::string("{"), std::string(R"({"a" 1})"), std::string("[1,]"),
        std::string("01"), std::string("1."), std::string("tru"), std::string("\"a\nb\""),
        std::string("\"\xC3\""), std::string("\"\\u0000\""), std::string(R"("\ud83d")"),
        std::string("\xEF\xBB\xBF{}"), std::string("1e400"), std::string("-1e400"),
        std::string("1e-400"), "1" + std::string(400, '0'), "0." + std::string(400, '0') + "1",
        nested(annals::kMaxJsonDepth + 1), std::string("{} x")}) {
    SCOPED_TRACE(text.substr(0, 60));
    EXPECT_FALSE(is_lazy_stored_json(text));
  }
}

// Every text that decode_stored_event keeps unparsed must decode as it did when every column
// was parsed at once: an event is marked exactly when parsing fails, and the values and their
// dumps are equal. The texts are variations of stored JSON: each byte removed, doubled, or
// replaced by one of the characters that change JSON's structure.
std::vector<std::string> variations(std::string_view text) {
  std::vector<std::string> out;
  constexpr std::string_view kReplacements = "{}[]\",:\\ 0-e.n\x80\xC3";
  for (std::size_t at = 0; at < text.size(); ++at) {
    std::string removed(text);
    removed.erase(at, 1);
    out.push_back(removed);
    std::string doubled(text);
    doubled.insert(at, 1, text[at]);
    out.push_back(doubled);
    for (const char c : kReplacements) {
      std::string replaced(text);
      replaced[at] = c;
      out.push_back(replaced);
    }
  }
  return out;
}

std::optional<json> parsed_at_once(const std::string& text) {
  try {
    return parse_stored_json(text);
  } catch (const json::exception&) {
    return std::nullopt;
  } catch (const annals::InvalidArgumentError&) {
    return std::nullopt;
  }
}

TEST(LazyStoredJsonTest, DecodingMarksExactlyTheEventsParsingWouldHaveMarked) {
  std::size_t kept = 0;
  std::size_t marked = 0;
  for (const std::string_view seed :
       {kStored, std::string_view(R"({"u": "\u00e9\ud83d\ude00", "x": [1e5, -0, 0.25, 1e300]})"),
        std::string_view(R"([{"a": {"b": [true, false, null]}}, "t\"q"])")}) {
    for (const std::string& text : variations(seed)) {
      SCOPED_TRACE(text);
      const auto expected = parsed_at_once(text);
      const auto event = annals::detail::decode_stored_event({.stream_id = "account-1",
                                                              .version = 1,
                                                              .position = annals::Position(1, 1),
                                                              .id = annals::EventId::generate(),
                                                              .type = "Fine",
                                                              .schema_version = 1,
                                                              .data = text,
                                                              .metadata = text,
                                                              .recorded_at = {}});
      const bool metadata_ok = expected && expected->is_object();
      ASSERT_EQ(event.is_undecodable(), !metadata_ok);
      if (expected) {
        EXPECT_EQ(event.data, *expected);
        EXPECT_EQ(event.data.dump(), expected->dump());
      } else {
        EXPECT_TRUE(event.data.is_null());
      }
      if (metadata_ok) {
        EXPECT_EQ(event.metadata.dump(), expected->dump());
      }
      if (event.data.text()) ++kept;
      if (event.is_undecodable()) ++marked;
    }
  }
  // Both paths were taken many times.
  EXPECT_GT(kept, 100u);
  EXPECT_GT(marked, 100u);
}

TEST(LazyStoredJsonTest, AStoredRowKeepsItsTextUntilRead) {
  const auto event = annals::detail::decode_stored_event({.stream_id = "account-1",
                                                          .version = 1,
                                                          .position = annals::Position(1, 1),
                                                          .id = annals::EventId::generate(),
                                                          .type = "Fine",
                                                          .schema_version = 1,
                                                          .data = R"({"n": 1})",
                                                          .metadata = R"({"c": "x"})",
                                                          .recorded_at = {}});
  EXPECT_FALSE(event.is_undecodable());
  EXPECT_FALSE(event.data.is_parsed());
  EXPECT_FALSE(event.metadata.is_parsed());
  EXPECT_EQ(*event.data.text(), R"({"n": 1})");
  EXPECT_EQ(event.metadata["c"], "x");
  // Numbers a double cannot hold are parsed at once, into strings of their text as before.
  const auto numbers = annals::detail::decode_stored_event({.stream_id = "account-1",
                                                            .version = 1,
                                                            .position = annals::Position(1, 2),
                                                            .id = annals::EventId::generate(),
                                                            .type = "Fine",
                                                            .schema_version = 1,
                                                            .data = R"({"over": 1e400})",
                                                            .metadata = "{}",
                                                            .recorded_at = {}});
  EXPECT_FALSE(numbers.is_undecodable());
  EXPECT_FALSE(numbers.data.text().has_value());
  EXPECT_EQ(numbers.data["over"], "1e400");
}

}  // namespace
