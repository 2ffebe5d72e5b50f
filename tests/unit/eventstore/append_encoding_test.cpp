// How the PostgreSQL event store encodes an append's parameters (eventstore/postgres/src):
// array literals quote exactly what array_in needs, and expected versions take the codes that
// annals.append_events and the single-event statement read (append_codes.hpp).
#include <string>

#include <gtest/gtest.h>

#include "annals/eventstore/types.hpp"
#include "append_codes.hpp"
#include "array_literal.hpp"

namespace {

using annals::ExpectedVersion;
using annals::postgres::detail::ArrayLiteral;
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
