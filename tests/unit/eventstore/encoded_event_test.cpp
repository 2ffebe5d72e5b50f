// Unit tests of append validation and serialization (annals/eventstore/detail/encoded_event.hpp),
// shared by every store.
#include "annals/eventstore/detail/encoded_event.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/testkit/printers.hpp"

namespace annals::detail {
namespace {

using ::testing::HasSubstr;

const StreamId kStream("account-1");

NewEvent event(std::string type = "Happened", nlohmann::json data = nlohmann::json::object()) {
  NewEvent out;
  out.type = std::move(type);
  out.data = std::move(data);
  return out;
}

// The message of the InvalidArgumentError that `call` throws; fails the test otherwise.
template <typename F>
std::string invalid_argument_message(F&& call) {
  try {
    call();
  } catch (const InvalidArgumentError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InvalidArgumentError was thrown";
  return {};
}

std::string encode_error(const std::vector<NewEvent>& events, const AppendLimits& limits = {}) {
  return invalid_argument_message([&] { (void)encode_events(kStream, events, limits); });
}

// ---- encode_events ----------------------------------------------------------------------

TEST(EncodeEventsTest, SerializesEveryField) {
  auto e = event("MoneyDeposited", {{"amount", 10}, {"currency", "EUR"}});
  e.schema_version = 3;
  e.metadata = {{"correlation_id", "c-1"}};
  const auto encoded = encode_events(kStream, {e}, {});
  ASSERT_EQ(encoded.size(), 1u);
  EXPECT_EQ(encoded[0].type, "MoneyDeposited");
  EXPECT_EQ(encoded[0].schema_version, 3);
  EXPECT_EQ(nlohmann::json::parse(encoded[0].data), e.data);
  EXPECT_EQ(encoded[0].metadata, R"({"correlation_id":"c-1"})");
}

TEST(EncodeEventsTest, AssignsTimeOrderedIdsToEventsWithoutOne) {
  const auto encoded = encode_events(kStream, std::vector<NewEvent>(5, event()), {});
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    EXPECT_FALSE(encoded[i].id.is_nil());
    EXPECT_EQ(encoded[i].id.uuid().data[6] >> 4, 7);
    if (i > 0) {
      EXPECT_LT(encoded[i - 1].id, encoded[i].id);
    }
  }
}

TEST(EncodeEventsTest, KeepsSuppliedIds) {
  auto e = event();
  e.id = EventId::parse("0189abcd-ef01-7234-8567-89abcdef0123");
  const auto encoded = encode_events(kStream, {e, event()}, {});
  EXPECT_EQ(encoded[0].id, *e.id);
  EXPECT_NE(encoded[1].id, *e.id);
}

TEST(EncodeEventsTest, RejectsAnEmptyAppendNamingTheStream) {
  const auto message = encode_error({});
  EXPECT_THAT(message, HasSubstr("\"account-1\""));
  EXPECT_THAT(message, HasSubstr("no events"));
}

TEST(EncodeEventsTest, RejectsMoreEventsThanTheLimit) {
  AppendLimits limits;
  limits.max_events_per_append = 3;
  EXPECT_NO_THROW((void)encode_events(kStream, std::vector<NewEvent>(3, event()), limits));
  const auto message = encode_error(std::vector<NewEvent>(4, event()), limits);
  EXPECT_THAT(message, HasSubstr("4 events"));
  EXPECT_THAT(message, HasSubstr("limit of 3"));
}

TEST(EncodeEventsTest, RejectsBadTypeNamesNamingTheEventIndex) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", "type is empty"},
      {std::string(257, 'T'), "257 bytes"},
      {"Line\nBreak", "control character U+000A"},
      {std::string("Nul\0", 4), "control character U+0000"},
      {"Del\x7f", "control character U+007F"},
      {"Bad\xff", "not valid UTF-8"}};
  for (const auto& [type, problem] : cases) {
    const auto message = encode_error({event(), event(type)});
    EXPECT_THAT(message, HasSubstr("event 1 of the append to stream \"account-1\"")) << problem;
    EXPECT_THAT(message, HasSubstr(problem));
  }
}

TEST(EncodeEventsTest, AcceptsATypeNameOfTheMaximumLength) {
  const auto encoded = encode_events(kStream, {event(std::string(256, 'T'))}, {});
  EXPECT_EQ(encoded[0].type.size(), 256u);
}

TEST(EncodeEventsTest, RejectsSchemaVersionBelowOne) {
  auto e = event();
  e.schema_version = 0;
  EXPECT_THAT(encode_error({e}), HasSubstr("schema_version must be >= 1, got 0"));
}

TEST(EncodeEventsTest, RejectsMetadataThatIsNotAnObject) {
  auto e = event();
  e.metadata = nlohmann::json::array();
  EXPECT_THAT(encode_error({e}), HasSubstr("metadata must be a JSON object, got array"));
  e.metadata = nullptr;
  EXPECT_THAT(encode_error({e}), HasSubstr("metadata must be a JSON object, got null"));
}

TEST(EncodeEventsTest, AcceptsAnyJsonValueAsData) {
  for (const auto& data : {nlohmann::json::array(), nlohmann::json("text"), nlohmann::json(1.5),
                           nlohmann::json(nullptr), nlohmann::json(false)}) {
    const auto encoded = encode_events(kStream, {event("Happened", data)}, {});
    EXPECT_EQ(encoded[0].data, data.dump());
  }
}

TEST(EncodeEventsTest, RejectsDiscardedValues) {
  const nlohmann::json discarded(nlohmann::json::value_t::discarded);
  EXPECT_THAT(encode_error({event("Happened", discarded)}), HasSubstr("discarded"));
  EXPECT_THAT(encode_error({event("Happened", nlohmann::json::array({1, discarded}))}),
              HasSubstr("discarded"));
}

TEST(EncodeEventsTest, RejectsOversizedDataNamingSizeAndLimit) {
  AppendLimits limits;
  limits.max_data_bytes = 10;
  EXPECT_NO_THROW((void)encode_events(kStream, {event("Happened", "12345678")}, limits));
  const auto message = encode_error({event("Happened", "123456789")}, limits);
  EXPECT_THAT(message, HasSubstr("data is 11 bytes"));
  EXPECT_THAT(message, HasSubstr("limit of 10 bytes"));
}

TEST(EncodeEventsTest, RejectsOversizedMetadataNamingSizeAndLimit) {
  AppendLimits limits;
  limits.max_metadata_bytes = 10;
  auto e = event();
  e.metadata = {{"k", "123456"}};  // {"k":"123456"} is 14 bytes
  const auto message = encode_error({e}, limits);
  EXPECT_THAT(message, HasSubstr("metadata is 14 bytes"));
  EXPECT_THAT(message, HasSubstr("limit of 10 bytes"));
}

TEST(EncodeEventsTest, TurnsSerializationErrorsIntoInvalidArgumentErrors) {
  EXPECT_THAT(encode_error({event("Happened", {{"text", "caf\xc3"}})}),
              HasSubstr("data cannot be serialized"));
  auto e = event();
  e.metadata = {{"key\xff", 1}};
  EXPECT_THAT(encode_error({e}), HasSubstr("metadata cannot be serialized"));
}

TEST(EncodeEventsTest, RejectsTheNulCharacterInStringsAndKeys) {
  EXPECT_THAT(encode_error({event("Happened", {{"text", std::string("a\0b", 3)}})}),
              HasSubstr("U+0000"));
  EXPECT_THAT(encode_error({event("Happened", {{std::string("k\0", 2), 1}})}), HasSubstr("U+0000"));
}

TEST(EncodeEventsTest, AcceptsTextThatOnlyLooksLikeANulEscape) {
  const nlohmann::json data = {{"text", "\\u0000 and \\\\u0000"}};
  const auto encoded = encode_events(kStream, {event("Happened", data)}, {});
  EXPECT_EQ(nlohmann::json::parse(encoded[0].data), data);
}

TEST(EncodeEventsTest, SerializesNonFiniteNumbersAsNull) {
  const auto encoded = encode_events(
      kStream, {event("Happened", {{"x", std::numeric_limits<double>::quiet_NaN()}})}, {});
  EXPECT_EQ(encoded[0].data, R"({"x":null})");
}

TEST(EncodeEventsTest, RejectsTheNilId) {
  auto e = event();
  e.id = EventId();
  EXPECT_THAT(encode_error({event(), e}), HasSubstr("event 1"));
  EXPECT_THAT(encode_error({e}), HasSubstr("nil"));
}

TEST(EncodeEventsTest, RejectsDuplicateIdsNamingBothEvents) {
  auto e = event();
  e.id = EventId::generate();
  const auto message = encode_error({e, event(), e});
  EXPECT_THAT(message, HasSubstr("invalid event 2"));
  EXPECT_THAT(message, HasSubstr(e.id->to_string()));
  EXPECT_THAT(message, HasSubstr("id of event 0"));
}

// ---- validate_multi_append --------------------------------------------------------------

StreamAppend part(const std::string& stream, std::vector<NewEvent> events) {
  return StreamAppend{.stream_id = StreamId(stream),
                      .expected = ExpectedVersion::any(),
                      .events = std::move(events)};
}

std::string multi_error(const std::vector<StreamAppend>& appends, const AppendLimits& limits = {}) {
  return invalid_argument_message([&] { validate_multi_append(appends, limits); });
}

TEST(ValidateMultiAppendTest, AcceptsDistinctStreams) {
  EXPECT_NO_THROW(
      validate_multi_append({part("a-1", {event()}), part("b-1", {event(), event()})}, {}));
}

TEST(ValidateMultiAppendTest, RejectsNoStreams) {
  EXPECT_THAT(multi_error({}), HasSubstr("no streams"));
}

TEST(ValidateMultiAppendTest, RejectsARepeatedStream) {
  EXPECT_THAT(multi_error({part("a-1", {event()}), part("b-1", {event()}), part("a-1", {event()})}),
              HasSubstr("stream \"a-1\" appears more than once"));
}

TEST(ValidateMultiAppendTest, RejectsTooManyEventsInTotal) {
  AppendLimits limits;
  limits.max_events_per_append = 3;
  const auto message =
      multi_error({part("a-1", {event(), event()}), part("b-1", {event(), event()})}, limits);
  EXPECT_THAT(message, HasSubstr("4 events"));
  EXPECT_THAT(message, HasSubstr("limit of 3"));
}

TEST(ValidateMultiAppendTest, RejectsAnIdUsedInTwoStreams) {
  auto e = event();
  e.id = EventId::generate();
  const auto message = multi_error({part("a-1", {event(), e}), part("b-1", {e})});
  EXPECT_THAT(message, HasSubstr("invalid event 0 of the append to stream \"b-1\""));
  EXPECT_THAT(message, HasSubstr("id of event 1 of stream \"a-1\""));
}

TEST(ValidateMultiAppendTest, LeavesMissingAndNilIdsToEncodeEvents) {
  auto nil = event();
  nil.id = EventId();
  EXPECT_NO_THROW(
      validate_multi_append({part("a-1", {event(), nil}), part("b-1", {event(), nil})}, {}));
}

}  // namespace
}  // namespace annals::detail
