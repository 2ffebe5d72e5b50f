// Unit tests of the event store's value types (annals/eventstore/types.hpp).
#include "annals/eventstore/types.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/printers.hpp"

namespace annals {
namespace {

using ::testing::HasSubstr;

// The message of the InvalidArgumentError that `call` throws; fails the test otherwise.
template <typename F>
std::string invalid_argument_message(F&& call) {
  try {
    call();
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  ADD_FAILURE() << "no InvalidArgumentError was thrown";
  return {};
}

std::uint64_t unix_ms_of(const EventId& id) {
  std::uint64_t ms = 0;
  for (std::size_t i = 0; i < 6; ++i) ms = (ms << 8) | id.uuid().data[i];
  return ms;
}

std::uint64_t now_unix_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

RecordedEvent recorded(const std::string& stream, const std::string& type) {
  return RecordedEvent{.stream_id = StreamId(stream),
                       .version = 1,
                       .position = Position(1, 1),
                       .id = EventId::generate(),
                       .type = type,
                       .schema_version = 1,
                       .data = nlohmann::json::object(),
                       .metadata = nlohmann::json::object(),
                       .recorded_at = std::chrono::system_clock::now()};
}

// ---- StreamId ---------------------------------------------------------------------------

TEST(StreamIdTest, KeepsValueAndCategory) {
  const StreamId id("account-42");
  EXPECT_EQ(id.value(), "account-42");
  EXPECT_EQ(id.category(), "account");
}

TEST(StreamIdTest, AcceptsUnicodeAndPunctuation) {
  for (const std::string value : {"счёт-1", "ünï-😀", "a b-'\";--", "order-\u00a0x"}) {
    EXPECT_EQ(StreamId(value).value(), value);
  }
}

TEST(StreamIdTest, AcceptsTheMaximumLength) {
  const std::string value(StreamId::kMaxBytes, 'a');
  EXPECT_EQ(StreamId(value).value(), value);
}

TEST(StreamIdTest, RejectsEmpty) {
  EXPECT_THAT(invalid_argument_message([] { StreamId(""); }), HasSubstr("empty"));
}

TEST(StreamIdTest, RejectsTooLongAndNamesTheLength) {
  const auto message =
      invalid_argument_message([] { StreamId(std::string(StreamId::kMaxBytes + 1, 'a')); });
  EXPECT_THAT(message, HasSubstr("513 bytes"));
  EXPECT_THAT(message, HasSubstr("512"));
}

TEST(StreamIdTest, RejectsControlCharacters) {
  const std::vector<std::pair<std::string, std::string>> cases{{std::string("a\0b", 3), "U+0000"},
                                                               {"a\tb", "U+0009"},
                                                               {"a\nb", "U+000A"},
                                                               {"a\x1f", "U+001F"},
                                                               {"a\x7f", "U+007F"},
                                                               {"a\xc2\x80", "U+0080"},
                                                               {"a\xc2\x9f", "U+009F"}};
  for (const auto& [value, code] : cases) {
    const std::string& id = value;  // clang before 16 cannot capture a structured binding
    const auto message = invalid_argument_message([&] { StreamId{id}; });
    EXPECT_THAT(message, HasSubstr("control character " + code)) << code;
    EXPECT_THAT(message, HasSubstr("byte offset 1")) << code;
  }
}

TEST(StreamIdTest, RejectsInvalidUtf8) {
  for (const std::string value : {
           "\xff",              // never valid
           "\x80",              // lone continuation byte
           "ab\xc3",            // truncated two-byte sequence
           "\xe2\x82",          // truncated three-byte sequence
           "\xc0\xaf",          // overlong '/'
           "\xe0\x80\xaf",      // overlong '/' in three bytes
           "\xed\xa0\x80",      // UTF-16 surrogate
           "\xf4\x90\x80\x80",  // above U+10FFFF
       }) {
    EXPECT_THAT(invalid_argument_message([&] { StreamId{value}; }), HasSubstr("not valid UTF-8"));
  }
}

TEST(StreamIdTest, MessageShowsTheIdWithEscapes) {
  const auto message = invalid_argument_message([] { StreamId("bad\nid"); });
  EXPECT_THAT(message, HasSubstr(R"("bad\u000Aid")"));
  const auto invalid = invalid_argument_message([] { StreamId("caf\xc3"); });
  EXPECT_THAT(invalid, HasSubstr(R"("caf\xC3")"));
}

TEST(StreamIdTest, ComparesByValue) {
  EXPECT_EQ(StreamId("a-1"), StreamId("a-1"));
  EXPECT_NE(StreamId("a-1"), StreamId("a-2"));
  EXPECT_LT(StreamId("a-1"), StreamId("a-2"));
}

TEST(CategoryOfTest, IsThePartBeforeTheFirstDash) {
  EXPECT_EQ(category_of("account-1"), "account");
  EXPECT_EQ(category_of("order-2024-07"), "order");
  EXPECT_EQ(category_of("singleton"), "singleton");
  EXPECT_EQ(category_of("-x"), "");
  EXPECT_EQ(category_of(""), "");
}

// ---- EventId ----------------------------------------------------------------------------

TEST(EventIdTest, GenerateSetsVersion7AndRfcVariant) {
  for (int i = 0; i < 1000; ++i) {
    const auto id = EventId::generate();
    EXPECT_EQ(id.uuid().data[6] >> 4, 7);
    EXPECT_EQ(id.uuid().data[8] & 0xC0, 0x80);
    EXPECT_FALSE(id.is_nil());
  }
}

TEST(EventIdTest, GenerateEmbedsTheUnixTimeInMilliseconds) {
  // On a fresh thread: a burst of ids on one thread may run ahead of the clock (a counter
  // overflow borrows the next millisecond), and other tests generate bursts.
  std::uint64_t before = 0;
  std::uint64_t after = 0;
  EventId id;
  std::jthread([&] {
    before = now_unix_ms();
    id = EventId::generate();
    after = now_unix_ms();
  }).join();
  EXPECT_GE(unix_ms_of(id), before);
  EXPECT_LE(unix_ms_of(id), after);
}

TEST(EventIdTest, GenerateIsStrictlyIncreasingWithinAThread) {
  // Far more ids than fit in one millisecond's counter, so overflow is exercised too.
  EventId previous = EventId::generate();
  for (int i = 0; i < 200'000; ++i) {
    const EventId next = EventId::generate();
    ASSERT_LT(previous, next) << previous.to_string() << " then " << next.to_string();
    previous = next;
  }
}

TEST(EventIdTest, GenerateIsUniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20'000;
  std::mutex mutex;
  std::set<EventId> ids;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        std::vector<EventId> mine;
        for (int i = 0; i < kPerThread; ++i) mine.push_back(EventId::generate());
        std::lock_guard lock(mutex);
        ids.insert(mine.begin(), mine.end());
      });
    }
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(EventIdTest, ToStringIsCanonicalLowerCase) {
  const auto id = EventId::parse("0189ABCD-EF01-7234-8567-89ABCDEF0123");
  EXPECT_EQ(id.to_string(), "0189abcd-ef01-7234-8567-89abcdef0123");
  EXPECT_EQ(id.uuid().data[0], 0x01);
  EXPECT_EQ(id.uuid().data[15], 0x23);
}

TEST(EventIdTest, ParseRoundTripsToString) {
  for (int i = 0; i < 100; ++i) {
    const auto id = EventId::generate();
    EXPECT_EQ(EventId::parse(id.to_string()), id);
  }
}

TEST(EventIdTest, ParseRejectsNonCanonicalText) {
  for (const std::string text : {
           "", "0189abcd",
           "0189abcdef017234856789abcdef0123",          // no hyphens
           "{0189abcd-ef01-7234-8567-89abcdef0123}",    // braces
           "0189abcd-ef01-7234-8567-89abcdef012",       // 35 characters
           "0189abcd-ef01-7234-8567-89abcdef01234",     // 37 characters
           "0189abcdef-01-7234-8567-89abcdef0123",      // hyphen misplaced
           "0189abcg-ef01-7234-8567-89abcdef0123",      // not hex
           " 189abcd-ef01-7234-8567-89abcdef0123",      // space
           "0189abcd-ef01-7234-8567-89abcdef012\n",     // control character
           "urn:uuid:0189abcd-ef01-7234-8567-89abcdef"  // URN
       }) {
    EXPECT_THAT(invalid_argument_message([&] { (void)EventId::parse(text); }),
                HasSubstr("invalid event id"))
        << text;
  }
}

TEST(EventIdTest, DefaultIsNil) {
  const EventId nil;
  EXPECT_TRUE(nil.is_nil());
  EXPECT_EQ(nil.to_string(), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(EventId::parse(nil.to_string()), nil);
}

TEST(EventIdTest, OrderIsByteWise) {
  EXPECT_LT(EventId::parse("00000000-0000-0000-0000-0000000000ff"),
            EventId::parse("00000000-0000-0000-0000-000000000100"));
  EXPECT_LT(EventId::parse("7fffffff-ffff-ffff-ffff-ffffffffffff"),
            EventId::parse("80000000-0000-0000-0000-000000000000"));
}

// ---- ExpectedVersion --------------------------------------------------------------------

TEST(ExpectedVersionTest, ExactRejectsNegativeVersions) {
  EXPECT_THAT(invalid_argument_message([] { (void)ExpectedVersion::exact(-1); }), HasSubstr("-1"));
}

TEST(ExpectedVersionTest, ParseAcceptsEveryForm) {
  EXPECT_EQ(ExpectedVersion::parse("any"), ExpectedVersion::any());
  EXPECT_EQ(ExpectedVersion::parse("no-stream"), ExpectedVersion::no_stream());
  EXPECT_EQ(ExpectedVersion::parse("exists"), ExpectedVersion::stream_exists());
  EXPECT_EQ(ExpectedVersion::parse("0"), ExpectedVersion::exact(0));
  EXPECT_EQ(ExpectedVersion::parse("42"), ExpectedVersion::exact(42));
  EXPECT_EQ(ExpectedVersion::parse("9223372036854775807"),
            ExpectedVersion::exact(std::numeric_limits<StreamVersion>::max()));
}

TEST(ExpectedVersionTest, ParseRejectsAnythingElseAndNamesTheText) {
  for (const std::string text : {"", "Any", "ANY", "no_stream", "stream-exists", "-1", "+1", " 1",
                                 "1 ", "1.0", "0x10", "9223372036854775808", "abc"}) {
    EXPECT_THAT(invalid_argument_message([&] { (void)ExpectedVersion::parse(text); }),
                HasSubstr("\"" + text + "\""))
        << text;
  }
}

TEST(ExpectedVersionTest, ToStringRoundTripsThroughParse) {
  for (const auto& expected :
       {ExpectedVersion::any(), ExpectedVersion::no_stream(), ExpectedVersion::stream_exists(),
        ExpectedVersion::exact(0), ExpectedVersion::exact(7)}) {
    EXPECT_EQ(ExpectedVersion::parse(expected.to_string()), expected);
  }
  EXPECT_EQ(ExpectedVersion::any().to_string(), "any");
  EXPECT_EQ(ExpectedVersion::no_stream().to_string(), "no-stream");
  EXPECT_EQ(ExpectedVersion::stream_exists().to_string(), "exists");
  EXPECT_EQ(ExpectedVersion::exact(7).to_string(), "7");
}

TEST(ExpectedVersionTest, MatchesFollowsEachMode) {
  const std::optional<StreamVersion> none;
  EXPECT_TRUE(ExpectedVersion::any().matches(none));
  EXPECT_TRUE(ExpectedVersion::any().matches(3));

  EXPECT_TRUE(ExpectedVersion::no_stream().matches(none));
  EXPECT_FALSE(ExpectedVersion::no_stream().matches(1));

  EXPECT_FALSE(ExpectedVersion::stream_exists().matches(none));
  EXPECT_TRUE(ExpectedVersion::stream_exists().matches(1));

  EXPECT_TRUE(ExpectedVersion::exact(3).matches(3));
  EXPECT_FALSE(ExpectedVersion::exact(3).matches(2));
  EXPECT_FALSE(ExpectedVersion::exact(3).matches(4));
  EXPECT_FALSE(ExpectedVersion::exact(3).matches(none));
}

TEST(ExpectedVersionTest, ExactZeroBehavesLikeNoStream) {
  EXPECT_TRUE(ExpectedVersion::exact(0).matches(std::nullopt));
  EXPECT_FALSE(ExpectedVersion::exact(0).matches(1));
  EXPECT_EQ(ExpectedVersion::exact(0).kind(), ExpectedVersion::Kind::kExact);
  EXPECT_EQ(ExpectedVersion::exact(0).to_string(), "0");
}

// ---- Position ---------------------------------------------------------------------------

TEST(PositionTest, StartIsZeroAndBeforeEverything) {
  EXPECT_EQ(Position::start(), Position());
  EXPECT_EQ(Position::start().to_string(), "0");
  EXPECT_EQ(Position::parse("0"), Position::start());
  EXPECT_LT(Position::start(), Position(1, 1));
}

TEST(PositionTest, OrdersByCommitThenSequence) {
  EXPECT_LT(Position(1, 9), Position(2, 1));
  EXPECT_LT(Position(2, 1), Position(2, 3));
  EXPECT_EQ(Position(2, 3), Position(2, 3));
}

TEST(PositionTest, StringFormRoundTrips) {
  for (const auto& position : {Position(1, 1), Position(7, 0), Position(123, 456),
                               Position(std::numeric_limits<std::uint64_t>::max(),
                                        std::numeric_limits<std::int64_t>::max())}) {
    EXPECT_EQ(Position::parse(position.to_string()), position);
  }
  EXPECT_EQ(Position(12, 34).to_string(), "12:34");
}

TEST(PositionTest, ParseRejectsMalformedText) {
  for (const std::string text :
       {"", "-1:2", "1:-2", "1", "00", "1:", ":1", "1:2:3", "a:b", " 1:2", "1:2 ", "+1:2", "0x1:2",
        "18446744073709551616:1", "1:9223372036854775808", "1;2"}) {
    EXPECT_THAT(invalid_argument_message([&] { (void)Position::parse(text); }),
                HasSubstr("invalid position"))
        << text;
  }
}

// ---- EventFilter ------------------------------------------------------------------------

TEST(EventFilterTest, EmptyFilterMatchesEverything) {
  EXPECT_TRUE(EventFilter{}.matches(recorded("account-1", "Opened")));
}

TEST(EventFilterTest, CategoryMatchesOnlyThatCategory) {
  const EventFilter filter{.category = "account", .event_types = {}};
  EXPECT_TRUE(filter.matches(recorded("account-1", "Opened")));
  EXPECT_TRUE(filter.matches(recorded("account-1-2", "Opened")));
  EXPECT_TRUE(filter.matches(recorded("account", "Opened")));
  EXPECT_FALSE(filter.matches(recorded("accounts-1", "Opened")));
  EXPECT_FALSE(filter.matches(recorded("acc-1", "Opened")));
}

TEST(EventFilterTest, EventTypesMatchAnyListedType) {
  const EventFilter filter{.category = std::nullopt, .event_types = {"Opened", "Closed"}};
  EXPECT_TRUE(filter.matches(recorded("account-1", "Opened")));
  EXPECT_TRUE(filter.matches(recorded("order-1", "Closed")));
  EXPECT_FALSE(filter.matches(recorded("account-1", "Deposited")));
}

TEST(EventFilterTest, CategoryAndTypesMustBothMatch) {
  const EventFilter filter{.category = "account", .event_types = {"Opened"}};
  EXPECT_TRUE(filter.matches(recorded("account-1", "Opened")));
  EXPECT_FALSE(filter.matches(recorded("order-1", "Opened")));
  EXPECT_FALSE(filter.matches(recorded("account-1", "Closed")));
}

}  // namespace
}  // namespace annals
