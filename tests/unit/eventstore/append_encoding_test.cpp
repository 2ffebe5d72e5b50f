// How the PostgreSQL event store encodes an append's parameters (eventstore/postgres/src):
// array literals quote exactly what array_in needs, and expected versions take the codes that
// annals.append_events and the single-event statement read (append_codes.hpp).
#include <cstdint>
#include <string>

#include <boost/uuid/uuid.hpp>

#include <gtest/gtest.h>

#include "annals/eventstore/types.hpp"
#include "append_codes.hpp"
#include "array_literal.hpp"
#include "binary_array.hpp"

namespace {

using annals::ExpectedVersion;
using annals::postgres::detail::ArrayLiteral;
using annals::postgres::detail::BinaryArray;
using annals::postgres::detail::ElementType;
using annals::postgres::detail::expected_code;
using annals::postgres::detail::ExpectedCode;

TEST(ArrayLiteralTest, EmptyArray) { EXPECT_EQ(ArrayLiteral().finish(), "{}"); }

TEST(ArrayLiteralTest, QuotesEscapeOnlyQuoteAndBackslash) {
  ArrayLiteral literal;
  literal.add_quoted("plain");
  literal.add_quoted(R"(a"b\c)");
  literal.add_quoted("{x,y} NULL");
  literal.add_quoted("");
  EXPECT_EQ(std::move(literal).finish(), R"({"plain","a\"b\\c","{x,y} NULL",""})");
}

TEST(ArrayLiteralTest, PlainAndNumbersAreWrittenAsTheyAre) {
  ArrayLiteral literal;
  literal.add_number(-3);
  literal.add_number(42);
  literal.add_plain("0190a1b2-0000-7000-8000-000000000001");
  EXPECT_EQ(std::move(literal).finish(), "{-3,42,0190a1b2-0000-7000-8000-000000000001}");
}

// The wire form array_recv reads: ndim, has-null flag, element type oid, then per dimension
// its size and lower bound, then each element as a 32-bit length and its bytes (big-endian).
std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

TEST(BinaryArrayTest, TextElementsAreLengthAndBytesWithNothingEscaped) {
  BinaryArray array(ElementType::kText);
  array.add_text(R"(a"b\c)");
  array.add_text("");
  array.add_text("\xE2\x98\x83");
  const std::string expected = be32(1) + be32(0) + be32(25) + be32(3) + be32(1) + be32(5) +
                               R"(a"b\c)" + be32(0) + be32(3) + "\xE2\x98\x83";
  EXPECT_EQ(std::move(array).finish(), expected);
}

TEST(BinaryArrayTest, JsonbElementsCarryFormatVersionOne) {
  BinaryArray array(ElementType::kJsonb);
  array.add_jsonb(R"({"a":"\"q\""})");
  const std::string json = R"({"a":"\"q\""})";
  EXPECT_EQ(std::move(array).finish(), be32(1) + be32(0) + be32(3802) + be32(1) + be32(1) +
                                           be32(static_cast<std::uint32_t>(json.size() + 1)) +
                                           "\x01" + json);
}

TEST(BinaryArrayTest, IntegersAndUuidsAreBigEndianFixedWidth) {
  BinaryArray int8s(ElementType::kInt8);
  int8s.add_int8(-2);
  EXPECT_EQ(std::move(int8s).finish(), be32(1) + be32(0) + be32(20) + be32(1) + be32(1) + be32(8) +
                                           be32(0xFFFFFFFF) + be32(0xFFFFFFFE));
  BinaryArray int4s(ElementType::kInt4);
  int4s.add_int4(258);
  EXPECT_EQ(std::move(int4s).finish(),
            be32(1) + be32(0) + be32(23) + be32(1) + be32(1) + be32(4) + be32(258));
  boost::uuids::uuid id{};
  for (std::size_t i = 0; i < id.size(); ++i) id.data[i] = static_cast<std::uint8_t>(i);
  BinaryArray uuids(ElementType::kUuid);
  uuids.add_uuid(id);
  EXPECT_EQ(std::move(uuids).finish(), be32(1) + be32(0) + be32(2950) + be32(1) + be32(1) +
                                           be32(16) +
                                           std::string(reinterpret_cast<const char*>(id.data), 16));
}

TEST(BinaryArrayTest, EmptyArrayHasNoDimensions) {
  EXPECT_EQ(BinaryArray(ElementType::kUuid).finish(), be32(0) + be32(0) + be32(2950));
}

TEST(ExpectedCodeTest, KindsWithoutAVersionAreNegative) {
  EXPECT_EQ(expected_code(ExpectedVersion::any()), -1);
  EXPECT_EQ(expected_code(ExpectedVersion::no_stream()), -2);
  EXPECT_EQ(expected_code(ExpectedVersion::stream_exists()), -3);
  EXPECT_EQ(ExpectedCode::kExactBase, -4);
}

TEST(ExpectedCodeTest, AnExactVersionIsItself) {
  EXPECT_EQ(expected_code(ExpectedVersion::exact(0)), 0);
  EXPECT_EQ(expected_code(ExpectedVersion::exact(17)), 17);
}

}  // namespace
