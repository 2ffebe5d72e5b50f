// Unit tests of the error taxonomy (annals/eventstore/error.hpp).
#include "annals/eventstore/error.hpp"

#include <string>

#include <gtest/gtest.h>

namespace annals {
namespace {

TEST(ErrorCodeTest, EveryCodeHasADistinctStableName) {
  EXPECT_EQ(to_string(ErrorCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(to_string(ErrorCode::kNotFound), "not_found");
  EXPECT_EQ(to_string(ErrorCode::kDomain), "domain");
  EXPECT_EQ(to_string(ErrorCode::kConcurrency), "concurrency");
  EXPECT_EQ(to_string(ErrorCode::kIdempotency), "idempotency");
  EXPECT_EQ(to_string(ErrorCode::kUnavailable), "unavailable");
  EXPECT_EQ(to_string(ErrorCode::kOutcomeUnknown), "outcome_unknown");
  EXPECT_EQ(to_string(ErrorCode::kCorruption), "corruption");
  EXPECT_EQ(to_string(ErrorCode::kInternal), "internal");
  EXPECT_EQ(to_string(ErrorCode::kPermissionDenied), "permission_denied");
}

TEST(ErrorTest, EachErrorCarriesItsCodeMessageAndRetryability) {
  struct Case {
    const Error& error;
    ErrorCode code;
    bool retryable;
  };
  const InvalidArgumentError invalid("bad input");
  const NotFoundError not_found("no such projection");
  const DomainError domain("insufficient funds");
  const IdempotencyError idempotency("partly stored");
  const UnavailableError unavailable("connection lost");
  const OutcomeUnknownError unknown("commit in doubt");
  const CorruptionError corruption("broken chain");
  const InternalError internal("bug");
  const PermissionDeniedError denied("permission denied for table events");
  for (const Case& c :
       {Case{invalid, ErrorCode::kInvalidArgument, false},
        Case{not_found, ErrorCode::kNotFound, false}, Case{domain, ErrorCode::kDomain, false},
        Case{idempotency, ErrorCode::kIdempotency, false},
        Case{unavailable, ErrorCode::kUnavailable, true},
        Case{unknown, ErrorCode::kOutcomeUnknown, true},
        Case{corruption, ErrorCode::kCorruption, false},
        Case{internal, ErrorCode::kInternal, false},
        Case{denied, ErrorCode::kPermissionDenied, false}}) {
    EXPECT_EQ(c.error.code(), c.code) << to_string(c.code);
    EXPECT_EQ(c.error.retryable(), c.retryable) << to_string(c.code);
    EXPECT_FALSE(std::string(c.error.what()).empty());
  }
  EXPECT_STREQ(invalid.what(), "bad input");
}

TEST(ErrorTest, OutcomeUnknownIsCaughtAsUnavailable) {
  try {
    throw OutcomeUnknownError("commit in doubt");
  } catch (const UnavailableError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutcomeUnknown);
    EXPECT_TRUE(e.retryable());
  }
}

TEST(ConcurrencyErrorTest, CarriesStreamExpectedAndActual) {
  const ConcurrencyError error("account-1", "3", 5);
  EXPECT_EQ(error.code(), ErrorCode::kConcurrency);
  EXPECT_TRUE(error.retryable());
  EXPECT_EQ(error.stream(), "account-1");
  EXPECT_EQ(error.expected(), "3");
  EXPECT_EQ(error.actual(), 5);
  EXPECT_STREQ(error.what(),
               "wrong expected version for stream \"account-1\": expected 3, actual 5");
}

TEST(ConcurrencyErrorTest, MessageSaysWhenTheStreamDoesNotExist) {
  const ConcurrencyError error("account-1", "exists", std::nullopt);
  EXPECT_EQ(error.actual(), std::nullopt);
  EXPECT_STREQ(error.what(),
               "wrong expected version for stream \"account-1\": expected exists, actual: no "
               "stream");
}

TEST(ConcurrencyErrorTest, CarriesTheTypedStreamAndExpectation) {
  const ConcurrencyError error(StreamId("account-1"), ExpectedVersion::exact(3), 5);
  ASSERT_TRUE(error.stream_id().has_value());
  EXPECT_EQ(*error.stream_id(), StreamId("account-1"));
  ASSERT_TRUE(error.expected_version().has_value());
  EXPECT_EQ(error.expected_version()->to_string(), "3");
  EXPECT_EQ(error.stream(), "account-1");
  EXPECT_EQ(error.expected(), "3");
  EXPECT_EQ(error.actual(), 5);
  EXPECT_STREQ(error.what(),
               "wrong expected version for stream \"account-1\": expected 3, actual 5");
}

TEST(ConcurrencyErrorTest, StringFormsFillTheTypedAccessorsOnlyWhenTheyParse) {
  const ConcurrencyError parsed("account-1", "no-stream", 2);
  ASSERT_TRUE(parsed.stream_id().has_value());
  EXPECT_EQ(parsed.stream_id()->value(), "account-1");
  ASSERT_TRUE(parsed.expected_version().has_value());
  EXPECT_EQ(parsed.expected_version()->to_string(), "no-stream");

  // Text that is not a valid stream id or expectation still makes an error, without types.
  const ConcurrencyError unparsed(std::string("bad\nid"), "sometimes", std::nullopt);
  EXPECT_FALSE(unparsed.stream_id().has_value());
  EXPECT_FALSE(unparsed.expected_version().has_value());
  EXPECT_EQ(unparsed.expected(), "sometimes");
  EXPECT_EQ(unparsed.code(), ErrorCode::kConcurrency);
}

}  // namespace
}  // namespace annals
