// The PostgreSQL store decodes the stored data and metadata (jsonb rendered as text) with its
// own parser, falling back to nlohmann's for anything it does not fully understand
// (eventstore/postgres/src/postgres_event_store.cpp, StoredJsonParser). Whatever path a value
// takes, what read_stream and read_all return must be exactly what nlohmann::json::parse makes
// of the same text: equal, and of the same number types (an integer stays an integer, a double
// a double), which dump() shows.
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "test_database.hpp"

namespace {

using nlohmann::json;

// Strings that exercise every escape, control characters, quotes, and 1- to 4-byte UTF-8
// (the last as a surrogate pair in escaped form).
const std::vector<std::string>& tricky_strings() {
  static const std::vector<std::string> kStrings = {
      "",
      "plain",
      "a string longer than the small-string buffer of std::string",
      "quote \" backslash \\ slash /",
      "controls \b \f \n \r \t \x01 \x1f end",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",  // é € 😀
      "\xe4\xb8\xad\xe6\x96\x87",                   // 中文
      "trailing backslash \\",
      "{\"not\": [\"json\"]}",
      "tab\tafter",
  };
  return kStrings;
}

std::vector<json> tricky_numbers() {
  return {json(0),
          json(-0.0),
          json(1),
          json(-1),
          json(std::numeric_limits<std::int64_t>::min()),
          json(std::numeric_limits<std::int64_t>::max()),
          json(std::numeric_limits<std::uint64_t>::max()),
          json(0.1),
          json(-2.5),
          json(1.0),
          json(1e300),
          json(-1e-300),
          json(123456789.123456789),
          json(5e-324)};
}

// A random JSON value of at most `depth` levels.
json random_value(std::mt19937_64& rng, int depth) {
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  switch (depth > 0 ? pick(6) : pick(4)) {
    case 0:
      return tricky_strings()[pick(tricky_strings().size())];
    case 1: {
      const auto numbers = tricky_numbers();
      return numbers[pick(numbers.size())];
    }
    case 2:
      return json(static_cast<std::int64_t>(rng() % 2'000'001) - 1'000'000);
    case 3: {
      const json literals[] = {json(true), json(false), json(nullptr)};
      return literals[pick(3)];
    }
    case 4: {
      json array = json::array();
      for (std::size_t i = pick(5); i > 0; --i) array.push_back(random_value(rng, depth - 1));
      return array;
    }
    default: {
      json object = json::object();
      for (std::size_t i = pick(6); i > 0; --i) {
        object[tricky_strings()[pick(tricky_strings().size())] + std::to_string(pick(100))] =
            random_value(rng, depth - 1);
      }
      return object;
    }
  }
}

class StoredJsonTest : public ::testing::Test {
 protected:
  std::unique_ptr<annals::EventStore> store_ = annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url()});

  // The stored text of each event of `stream`, in version order, as the server renders it.
  static std::vector<std::pair<std::string, std::string>> stored_text(const std::string& stream) {
    pqxx::connection connection(annals::testing::test_database_url());
    pqxx::nontransaction tx(connection);
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& row : tx.exec_params("SELECT data::text, metadata::text FROM annals.events "
                                          "WHERE stream_id = $1 ORDER BY stream_version",
                                          stream)) {
      texts.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
    }
    return texts;
  }

  static void expect_as_nlohmann(const json& decoded, const std::string& text) {
    const json expected = json::parse(text);
    EXPECT_EQ(decoded, expected) << text;
    EXPECT_EQ(decoded.dump(), expected.dump()) << text;  // the same number types
  }
};

TEST_F(StoredJsonTest, DecodedValuesAreExactlyWhatNlohmannParses) {
  const std::string category = "storedjson" + annals::testing::unique_stream("x").substr(2, 8);
  const annals::StreamId stream(category + "-1");
  std::mt19937_64 rng(20261123);
  std::vector<json> written;
  for (int batch = 0; batch < 6; ++batch) {
    std::vector<annals::NewEvent> events;
    for (int i = 0; i < 50; ++i) {
      json data = random_value(rng, 4);
      json metadata = json::object();
      metadata["note"] = random_value(rng, 2);
      metadata["numbers"] = tricky_numbers();
      written.push_back(data);
      events.push_back(annals::NewEvent{.type = "Tricky", .data = data, .metadata = metadata});
    }
    store_->append(stream, annals::ExpectedVersion::any(), std::move(events));
  }
  const auto texts = stored_text(stream.value());
  ASSERT_EQ(texts.size(), written.size());

  const auto by_stream = store_->read_stream(stream);
  ASSERT_EQ(by_stream.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    expect_as_nlohmann(by_stream[i].data, texts[i].first);
    expect_as_nlohmann(by_stream[i].metadata, texts[i].second);
  }

  annals::ReadAllOptions options;
  options.filter.category = category;
  options.max_count = 64;
  // The log shows events once every earlier-ordered transaction on the server has ended
  // (decision 5); other tests' transactions may hold them back for a moment.
  std::vector<annals::RecordedEvent> by_log;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (by_log.size() < texts.size() && std::chrono::steady_clock::now() < deadline) {
    auto page = store_->read_all(options);
    if (page.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // back-off, not a sync
      continue;
    }
    options.after = page.back().position;
    for (auto& event : page) by_log.push_back(std::move(event));
  }
  ASSERT_EQ(by_log.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(by_log[i], by_stream[i]);
  }
}

TEST_F(StoredJsonTest, NumbersBeyondEveryIntegerTypeBecomeDoublesAsInNlohmann) {
  // 1e300 is stored as numeric and rendered with all its 301 digits: too long for any integer,
  // so nlohmann (and the store) read it as a double; so is uint64 max + 1.
  const annals::StreamId stream(annals::testing::unique_stream("storedjson"));
  store_->append(
      stream, annals::ExpectedVersion::no_stream(),
      {annals::NewEvent{.type = "Big",
                        .data = {{"huge", 1e300},
                                 {"above_uint64", 18446744073709551616.0},
                                 {"uint64_max", std::numeric_limits<std::uint64_t>::max()},
                                 {"int64_min", std::numeric_limits<std::int64_t>::min()}}}});
  const auto texts = stored_text(stream.value());
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_NE(texts[0].first.find(std::string(300, '0')), std::string::npos) << texts[0].first;
  const auto events = store_->read_stream(stream);
  ASSERT_EQ(events.size(), 1u);
  expect_as_nlohmann(events[0].data, texts[0].first);
  EXPECT_TRUE(events[0].data["huge"].is_number_float());
  EXPECT_TRUE(events[0].data["uint64_max"].is_number_unsigned());
  EXPECT_TRUE(events[0].data["int64_min"].is_number_integer());
}

}  // namespace
