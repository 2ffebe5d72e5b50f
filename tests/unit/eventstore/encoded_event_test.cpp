// Unit tests of append validation and serialization (annals/eventstore/detail/encoded_event.hpp),
// shared by every store.
#include "annals/eventstore/detail/encoded_event.hpp"

#include <cmath>
#include <limits>
#include <random>
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

// `text` in a form that survives a test log: bytes outside printable ASCII as \xNN.
std::string quote_text(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

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

// ---- JSON text (NewEvent::data_json, metadata_json) ---------------------------------------

NewEvent text_event(std::string data_json) {
  NewEvent out = event();
  out.data_json = std::move(data_json);
  return out;
}

TEST(EncodeJsonTextTest, TakesTheTextAsItIs) {
  const std::string data = " {\"b\" : [1, 2.50, \"\\u00e9\"],\n \"a\": {}} ";
  NewEvent e = text_event(data);
  e.metadata_json = R"({"z": 1, "a": 2})";
  const auto encoded = encode_events(kStream, {e}, {});
  ASSERT_EQ(encoded.size(), 1u);
  EXPECT_EQ(encoded[0].data, data);
  EXPECT_EQ(encoded[0].metadata, R"({"z": 1, "a": 2})");
}

// The overload for stores, which moves types and text out of the events, encodes the same.
TEST(EncodeJsonTextTest, TakingTheEventsEncodesTheSameAsCopyingThem) {
  std::vector<NewEvent> events{text_event(R"({"a": [1, "x"]})"), event("Tree", {{"b", 2}})};
  events[0].metadata_json = R"({"m": true})";
  events[0].id = EventId::generate();
  events[1].id = EventId::generate();
  const auto copied = encode_events(kStream, events, {});
  const auto taken = encode_events(kStream, std::vector<NewEvent>(events), {});
  ASSERT_EQ(taken.size(), 2u);
  for (std::size_t i = 0; i < taken.size(); ++i) {
    EXPECT_EQ(taken[i].id, copied[i].id);
    EXPECT_EQ(taken[i].type, copied[i].type);
    EXPECT_EQ(taken[i].data, copied[i].data);
    EXPECT_EQ(taken[i].metadata, copied[i].metadata);
  }
  EXPECT_EQ(taken[0].data, R"({"a": [1, "x"]})");
  EXPECT_EQ(taken[0].type, "Happened");
}

TEST(EncodeJsonTextTest, CountsTheLimitOnTheTextAsGiven) {
  AppendLimits limits;
  limits.max_data_bytes = 10;
  EXPECT_NO_THROW((void)encode_events(kStream, {text_event("[1,     2]")}, limits));
  EXPECT_THAT(encode_error({event(), text_event("[1,      2]")}, limits),
              HasSubstr("invalid event 1 of the append to stream \"account-1\": data_json is 11 "
                        "bytes, over the limit of 10 bytes"));
}

TEST(EncodeJsonTextTest, AcceptsEveryEscapeAndSurrogatePairs) {
  for (const std::string& text : std::vector<std::string>{
           R"("\" \\ \/ \b \f \n \r \t")",
           R"("\u0001 \u001F \u00E9 \uFFFF \uD83D\uDE00 \uDBFF\uDFFF")",
           R"(["\ud800\udc00", "\u0041"])", "\"\x7f \xC2\x80 \xF4\x8F\xBF\xBF \xEF\xBF\xBE\""}) {
    EXPECT_NO_THROW((void)encode_events(kStream, {text_event(text)}, {})) << text;
  }
}

TEST(EncodeJsonTextTest, AcceptsNumbersADoubleAndPostgresqlCanHold) {
  for (const std::string& text : std::vector<std::string>{
           "0", "-0", "-0.0e-0", "1E+2", "1.7976931348623157e308", "-1.7976931348623157e308",
           "4.9e-324", "2.5e-310", "0e999999", "0.000e5000", "18446744073709551616",
           "-9223372036854775809", "1" + std::string(300, '0'), "1." + std::string(16383, '0'),
           "0.0e-16382", "0e1073741822", "0e-16383"}) {
    EXPECT_NO_THROW((void)encode_events(kStream, {text_event(text)}, {})) << text.substr(0, 40);
  }
}

TEST(EncodeJsonTextTest, RefusesNumbersADoubleCannotHold) {
  for (const std::string& text :
       std::vector<std::string>{"1.7976931348623159e308", "2e-324", "1" + std::string(309, '0'),
                                "0." + std::string(400, '0') + "1", "-1e400"}) {
    EXPECT_THAT(encode_error({text_event(text)}), HasSubstr("which no double can hold"))
        << text.substr(0, 40);
  }
}

// What PostgreSQL's numeric input refuses (SQLSTATE 22003, "value overflows numeric format"),
// though a double holds the value.
TEST(EncodeJsonTextTest, RefusesNumbersPostgresqlCannotHold) {
  for (const std::string& text :
       std::vector<std::string>{"1." + std::string(16384, '0'), "0.1e-16383", "0e-16384",
                                "0e1073741823", "0e-1073741823", "0e" + std::string(30, '9')}) {
    EXPECT_THAT(encode_error({text_event(text)}),
                HasSubstr("which PostgreSQL's numeric type cannot hold"))
        << text.substr(0, 40);
  }
  EXPECT_THAT(encode_error({text_event("[1, 2.5e-99999]")}),
              HasSubstr("data_json holds the number 2.5e-99999 at byte offset 4, which"));
}

TEST(EncodeJsonTextTest, RefusesAPartSetInBothForms) {
  NewEvent e = text_event("1");
  e.data = 1;
  EXPECT_THAT(encode_error({e}), HasSubstr("invalid event 0 of the append to stream "
                                           "\"account-1\": it sets both data and data_json"));
  e = event();
  e.metadata = {{"a", 1}};
  e.metadata_json = R"({"a": 1})";
  EXPECT_THAT(encode_error({e}), HasSubstr("it sets both metadata and metadata_json"));
}

// What the validator accepts, compared with nlohmann's parser on 30,000 mutations of typical
// documents (bytes replaced, inserted, deleted, the text cut short). It must accept exactly
// what nlohmann accepts, less what it refuses on purpose: a byte order mark (PostgreSQL refuses
// it), U+0000 (jsonb cannot store it) and numbers no double can hold (nlohmann refuses the
// overflowing ones itself).
TEST(EncodeJsonTextTest, AcceptsWhatNlohmannAcceptsLessWhatNoStoreCanHold) {
  const std::vector<std::string> seeds{
      R"({"account_id": "account-1", "amount": 12.5e-1, "tags": ["a", "b"], "ok": true})",
      R"([null, false, -0, 1E5, "\u00e9\ud83d\ude00", {"k": {"l": []}}, "\\\"\/"])",
      "{\"caf\xC3\xA9\": \"\xE6\x97\xA5\xF0\x9F\x98\x80\", \"n\": 18446744073709551615}",
      R"("a string with \n escapes \t and \u0041")",
  };
  const std::string alphabet = std::string("{}[]\",:\\/ u0123456789eE.-+tfnlrsaDd\t\n") +
                               std::string("\x00\x1F\x7F\x80\xBF\xC3\xED\xEF\xF4\xFF", 10);
  // The number texts of `text` that nlohmann parses to 0 though a digit is not 0.
  const auto has_underflow = [](const std::string& text) {
    struct Sax : nlohmann::json_sax<nlohmann::json> {
      bool underflow = false;
      bool null() override { return true; }
      bool boolean(bool) override { return true; }
      bool number_integer(number_integer_t) override { return true; }
      bool number_unsigned(number_unsigned_t) override { return true; }
      bool number_float(number_float_t value, const string_t& s) override {
        const auto mantissa = s.substr(0, s.find_first_of("eE"));
        if (value == 0 && mantissa.find_first_of("123456789") != std::string::npos) {
          underflow = true;
        }
        return true;
      }
      bool string(string_t&) override { return true; }
      bool binary(binary_t&) override { return true; }
      bool start_object(std::size_t) override { return true; }
      bool key(string_t&) override { return true; }
      bool end_object() override { return true; }
      bool start_array(std::size_t) override { return true; }
      bool end_array() override { return true; }
      bool parse_error(std::size_t, const std::string&,
                       const nlohmann::detail::exception&) override {
        return false;
      }
    } sax;
    nlohmann::json::sax_parse(text, &sax);
    return sax.underflow;
  };
  std::mt19937 rng(14);
  int accepted = 0;
  for (int round = 0; round < 30'000; ++round) {
    std::string text = seeds[rng() % seeds.size()];
    const int mutations = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations && !text.empty(); ++m) {
      const std::size_t at = rng() % text.size();
      const char byte = alphabet[rng() % alphabet.size()];
      switch (rng() % 4) {
        case 0:
          text[at] = byte;
          break;
        case 1:
          text.insert(at, 1, byte);
          break;
        case 2:
          text.erase(at, 1);
          break;
        default:
          text.resize(at);
          break;
      }
    }
    bool expected = nlohmann::json::accept(text);
    if (expected) {
      expected = text.rfind("\xEF\xBB\xBF", 0) != 0 &&
                 nlohmann::json::parse(text).dump().find("\\u0000") == std::string::npos &&
                 !has_underflow(text);
    }
    bool actual = true;
    try {
      (void)encode_events(kStream, {text_event(text)}, {});
    } catch (const InvalidArgumentError&) {
      actual = false;
    }
    ASSERT_EQ(actual, expected) << quote_text(text);
    if (actual) ++accepted;
  }
  // The mutations are not all fatal: both verdicts occur often.
  EXPECT_GT(accepted, 3'000);
  EXPECT_LT(accepted, 27'000);
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
