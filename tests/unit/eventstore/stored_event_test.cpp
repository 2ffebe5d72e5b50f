// Decoding stored rows without a server: detail::parse_stored_json keeps numbers no
// double can hold as their exact text, and detail::decode_stored_event marks a row that breaks
// a rule of the client instead of throwing.
#include "annals/eventstore/detail/stored_event.hpp"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/stored_json.hpp"

namespace {

using annals::detail::decode_stored_event;
using annals::detail::parse_stored_json;
using annals::detail::StoredEventColumns;
using nlohmann::json;

TEST(StoredJsonTest, NumbersNoDoubleHoldsBecomeTheirExactText) {
  const std::string over = "1" + std::string(400, '0');
  const std::string under = "0." + std::string(399, '0') + "1";
  const auto value = parse_stored_json("{\"over\": " + over + ", \"minus\": -" + over +
                                       ", \"under\": " + under + ", \"exp\": 1e400}");
  EXPECT_EQ(value["over"], json(over));
  EXPECT_EQ(value["minus"], json("-" + over));
  EXPECT_EQ(value["under"], json(under));
  EXPECT_EQ(value["exp"], json("1e400"));
}

TEST(StoredJsonTest, NumbersADoubleHoldsStayNumbersAsInNlohmann) {
  for (const char* text :
       {"0", "-0", "1.5", "1e300", "-1e-300", "5e-324", "3e-324", "18446744073709551615",
        "18446744073709551616", "-9223372036854775808", "-9223372036854775809", "0.0", "0e500"}) {
    SCOPED_TRACE(text);
    const auto value = parse_stored_json(text);
    const auto expected = json::parse(text);
    EXPECT_EQ(value, expected);
    EXPECT_EQ(value.dump(), expected.dump());
  }
}

TEST(StoredJsonTest, TextThatIsNotJsonThrowsAsNlohmann) {
  EXPECT_THROW(static_cast<void>(parse_stored_json("{\"a\": ")), nlohmann::json::parse_error);
}

StoredEventColumns columns(std::string_view stream, std::string_view type = "Fine",
                           std::string_view metadata = "{}") {
  return StoredEventColumns{.stream_id = stream,
                            .version = 3,
                            .position = annals::Position(7, 9),
                            .id = annals::EventId::generate(),
                            .type = type,
                            .schema_version = 1,
                            .data = "{\"n\": 1}",
                            .metadata = metadata};
}

TEST(StoredEventTest, AValidRowDecodes) {
  const auto event = decode_stored_event(columns("account-1"));
  EXPECT_FALSE(event.is_undecodable());
  EXPECT_EQ(event.stream_id.value(), "account-1");
  EXPECT_EQ(event.data, json({{"n", 1}}));
}

TEST(StoredEventTest, ABadStreamIdIsMarkedWithAValidReplacement) {
  const auto event = decode_stored_event(columns("account-a\nb"));
  ASSERT_TRUE(event.is_undecodable());
  EXPECT_EQ(event.decode_failure->stream_id, "account-a\nb");
  EXPECT_NE(event.decode_failure->reason.find("U+000A"), std::string::npos);
  EXPECT_EQ(event.stream_id.value(),
            "account-a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(event.version, 3);
  EXPECT_EQ(event.data, json({{"n", 1}}));  // what parsed is still there

  const auto empty = decode_stored_event(columns(""));
  ASSERT_TRUE(empty.is_undecodable());
  EXPECT_EQ(empty.stream_id.value(), "\xEF\xBF\xBD");

  const auto long_id = decode_stored_event(columns(std::string(600, 'x')));
  ASSERT_TRUE(long_id.is_undecodable());
  EXPECT_EQ(long_id.stream_id.value(), std::string(512, 'x'));
}

TEST(StoredEventTest, ABadTypeOrMetadataIsMarked) {
  EXPECT_TRUE(decode_stored_event(columns("a-1", "Bad\x7fType")).is_undecodable());
  EXPECT_TRUE(decode_stored_event(columns("a-1", "")).is_undecodable());
  const auto array = decode_stored_event(columns("a-1", "Fine", "[1]"));
  ASSERT_TRUE(array.is_undecodable());
  EXPECT_EQ(array.metadata, json::object());
  EXPECT_EQ(array.decode_failure->metadata, "[1]");
  const auto broken = decode_stored_event(columns("a-1", "Fine", "{oops"));
  ASSERT_TRUE(broken.is_undecodable());
  EXPECT_NE(broken.decode_failure->reason.find("stored metadata is not JSON"), std::string::npos);
}

TEST(StoredEventTest, TheNextRowIsCheckedEvenWhenItRepeatsABadOne) {
  // The previous event's stream id and type are reused only when that event was decoded.
  const auto bad = decode_stored_event(columns("a-1", "Bad\tType"));
  ASSERT_TRUE(bad.is_undecodable());
  EXPECT_TRUE(decode_stored_event(columns("a-1", "Bad\tType"), &bad).is_undecodable());
  const auto good = decode_stored_event(columns("a-1"));
  EXPECT_FALSE(decode_stored_event(columns("a-1"), &good).is_undecodable());
}

}  // namespace
