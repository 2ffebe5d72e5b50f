// Readers survive bad rows.
//
// EventColumnChecksTest: every rule the client enforces on an append is also a CHECK constraint
// of annals.events (sql/0007): a table of values the client refuses, each inserted as the
// database superuser (bypassing the client) and refused with SQLSTATE 23514, and a table of
// edge cases both accept.
//
// BadRowsTest: rows no client could write, inserted as the superuser after dropping the
// constraint that would refuse them (as the schema's owner could), with the hash and
// transaction id the store would give them, so that they otherwise look normal. Every reader
// goes on past them: read_all and read_stream deliver them marked, `annals read-all` and
// `annals read` print them and exit 7, a subscription delivers them and continues, a projection
// parks them as dead letters (in-memory and PostgreSQL projection stores) and continues, and the
// repository refuses to load an aggregate from such a stream with a CorruptionError naming the
// event. Numbers a double cannot hold arrive as their exact stored text. Rows whose JSON nests
// deeper than annals::kMaxJsonDepth are among the bad rows: refused by the decoder, never
// recursed through.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/repository.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "bank.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using annals::EventId;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamId;
using nlohmann::json;

using namespace std::chrono_literals;

constexpr const char* kNilUuid = "00000000-0000-0000-0000-000000000000";

// One row of annals.events as the superuser inserts it.
struct Row {
  std::string stream_id;
  std::string type = "Fine";
  int schema_version = 1;
  std::string data = "{}";
  std::string metadata = "{}";
  std::string event_id = EventId::generate().to_string();
  std::int64_t version = 1;
};

// The row written as the append function writes it: the writing transaction's id, the time,
// and the hash chained to the stream's previous event.
constexpr const char* kInsertRow =
    "INSERT INTO annals.events (transaction_id, stream_id, stream_version, event_id, event_type,"
    "   schema_version, data, metadata, recorded_at, hash)"
    " SELECT pg_current_xact_id(), $1::text, $2::bigint, $3::uuid, $4::text, $5::integer, "
    "$6::jsonb,"
    "   $7::jsonb, now(),"
    "   annals.event_hash(coalesce((SELECT e.hash FROM annals.events e WHERE e.stream_id = $1::text"
    "                                 AND e.stream_version = $2::bigint - 1), '\\x'::bytea),"
    "                     $3::uuid, $1::text, $2::bigint, $4::text, $5::integer, $6::jsonb,"
    "                     $7::jsonb, now())"
    " RETURNING transaction_id::text, global_position";

Position insert_in(pqxx::work& tx, const Row& row) {
  const auto result = tx.exec_params1(kInsertRow, row.stream_id, row.version, row.event_id,
                                      row.type, row.schema_version, row.data, row.metadata);
  return Position(result[0].as<std::uint64_t>(), result[1].as<std::int64_t>());
}

// Inserts `row` as the superuser. `dropped`: constraints of the rules of annals.events (on the
// table, or since sql/0010 on the domain of a column) dropped first, as the schema's owner
// could, and added back NOT VALID afterwards (so that later rows are checked again, while this
// one stays).
Position insert_as_superuser(const Row& row, const std::vector<std::string>& dropped = {}) {
  pqxx::connection connection(annals::testing::test_database_url());
  pqxx::work tx(connection);
  std::vector<std::pair<std::string, std::string>> re_adds;  // (owner clause, constraint)
  for (const auto& name : dropped) {
    const auto found = tx.exec_params1(
        "SELECT CASE WHEN c.conrelid <> 0 THEN 'TABLE annals.events'"
        "            ELSE 'DOMAIN ' || c.contypid::regtype::text END,"
        "       pg_get_constraintdef(c.oid)"
        "  FROM pg_constraint c"
        " WHERE c.conname = $1 AND (c.conrelid = 'annals.events'::regclass"
        "    OR c.contypid IN (SELECT atttypid FROM pg_attribute"
        "                       WHERE attrelid = 'annals.events'::regclass))",
        name);
    const auto owner = found[0].as<std::string>();
    tx.exec0("ALTER " + owner + " DROP CONSTRAINT " + tx.quote_name(name));
    re_adds.emplace_back(owner, tx.quote_name(name) + " " + found[1].as<std::string>());
  }
  const Position position = insert_in(tx, row);
  for (const auto& [owner, constraint] : re_adds) {
    tx.exec0("ALTER " + owner + " ADD CONSTRAINT " + constraint + " NOT VALID");
  }
  tx.commit();
  return position;
}

constexpr std::size_t kStoredDepth = 10'000;

std::string deep_array(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

std::string deep_object(std::size_t depth) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i) text += "{\"a\":";
  return text + "1" + std::string(depth, '}');
}

std::unique_ptr<annals::EventStore> make_store() {
  return annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url(), .pool_size = 4});
}

std::string random_hex() { return annals::testing::unique_stream("x").substr(2); }

// `prefix` padded with `unit` (then single 'a's) to exactly `bytes` bytes.
std::string padded(std::string prefix, const std::string& unit, std::size_t bytes) {
  while (prefix.size() + unit.size() <= bytes) prefix += unit;
  while (prefix.size() < bytes) prefix += 'a';
  return prefix;
}

// --- The constraints match the client ---------------------------------------------------------

struct RuleCase {
  const char* name;
  Row row;
  const char* constraint;
};

std::vector<RuleCase> refused_cases() {
  const std::string s = annals::testing::unique_stream("rule");
  const auto with = [&](auto change) {
    Row row{.stream_id = s + "-" + random_hex()};
    change(row);
    return row;
  };
  return {
      {"empty stream id", with([](Row& r) { r.stream_id = ""; }), "events_stream_id_check"},
      {"stream id of 513 bytes", with([&](Row& r) { r.stream_id = padded(s, "a", 513); }),
       "events_stream_id_check"},
      {"stream id of 512 characters, 513 bytes",
       with([&](Row& r) { r.stream_id = padded(s, "a", 511) + "\xc3\xa9"; }),
       "events_stream_id_check"},
      {"stream id with U+000A", with([&](Row& r) { r.stream_id = s + "-a\nb"; }),
       "events_stream_id_check"},
      {"stream id with U+0001", with([&](Row& r) { r.stream_id = s + "-\x01"; }),
       "events_stream_id_check"},
      {"stream id with U+001F", with([&](Row& r) { r.stream_id = s + "-\x1f"; }),
       "events_stream_id_check"},
      {"stream id with U+007F", with([&](Row& r) { r.stream_id = s + "-\x7f"; }),
       "events_stream_id_check"},
      {"stream id with U+0080", with([&](Row& r) { r.stream_id = s + "-\xc2\x80"; }),
       "events_stream_id_check"},
      {"stream id with U+009F", with([&](Row& r) { r.stream_id = s + "-\xc2\x9f"; }),
       "events_stream_id_check"},
      {"empty type", with([](Row& r) { r.type = ""; }), "events_event_type_check"},
      {"type of 257 bytes", with([](Row& r) { r.type = padded("T", "a", 257); }),
       "events_event_type_check"},
      {"type of 256 characters, 257 bytes",
       with([](Row& r) { r.type = padded("T", "a", 255) + "\xc3\xa9"; }),
       "events_event_type_check"},
      {"type with U+0009", with([](Row& r) { r.type = "Money\tDeposited"; }),
       "events_event_type_check"},
      {"type with U+0085", with([](Row& r) { r.type = "Money\xc2\x85"; }),
       "events_event_type_check"},
      {"nil event id", with([](Row& r) { r.event_id = kNilUuid; }), "events_event_id_check"},
      {"metadata an array", with([](Row& r) { r.metadata = "[1]"; }), "events_metadata_check"},
      {"metadata a string", with([](Row& r) { r.metadata = "\"m\""; }), "events_metadata_check"},
      {"metadata null", with([](Row& r) { r.metadata = "null"; }), "events_metadata_check"},
      {"schema version 0", with([](Row& r) { r.schema_version = 0; }),
       "events_schema_version_check"},
  };
}

std::vector<RuleCase> accepted_cases() {
  const auto s = [] { return annals::testing::unique_stream("edge"); };
  const auto row = [&](auto change) {
    Row r{.stream_id = s()};
    change(r);
    return r;
  };
  return {
      {"stream id of 512 bytes", row([&](Row& r) { r.stream_id = padded(s(), "a", 512); }), ""},
      {"stream id of 512 bytes of two-byte characters",
       row([&](Row& r) { r.stream_id = padded(s() + "-", "\xc3\xa9", 512); }), ""},
      {"stream id of 512 bytes of four-byte characters",
       row([&](Row& r) { r.stream_id = padded(s() + "-", "\xf0\x9f\x98\x80", 512); }), ""},
      {"stream id with U+007E and U+00A0",
       row([&](Row& r) { r.stream_id = s() + "-~\xc2\xa0 \"'\\%_"; }), ""},
      {"type of 256 bytes", row([](Row& r) { r.type = padded("T", "\xc3\xa9", 256); }), ""},
      {"type of one byte", row([](Row& r) { r.type = "T"; }), ""},
      {"type with U+00A0 and U+2028", row([](Row& r) { r.type = "A\xc2\xa0\xe2\x80\xa8"; }), ""},
      {"metadata empty object", row([](Row& r) { r.metadata = "{}"; }), ""},
      {"data a bare number", row([](Row& r) { r.data = "12"; }), ""},
  };
}

// Whether the client refuses `row` (InvalidArgumentError) when asked to append it.
bool client_refuses(annals::EventStore& store, const Row& row) {
  try {
    const StreamId stream(row.stream_id);
    std::vector<NewEvent> events;
    events.push_back(NewEvent{.id = EventId::parse(row.event_id),
                              .type = row.type,
                              .schema_version = row.schema_version,
                              .data = json::parse(row.data),
                              .metadata = json::parse(row.metadata)});
    static_cast<void>(store.append(stream, ExpectedVersion::any(), std::move(events)));
    return false;
  } catch (const annals::InvalidArgumentError&) {
    return true;
  }
}

TEST(EventColumnChecksTest, EveryValueTheClientRefusesTheDatabaseRefusesToo) {
  auto store = make_store();
  for (const auto& c : refused_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(client_refuses(*store, c.row));
    pqxx::connection connection(annals::testing::test_database_url());
    pqxx::work tx(connection);
    try {
      static_cast<void>(insert_in(tx, c.row));
      ADD_FAILURE() << "the database stored it";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "23514") << e.what();
      EXPECT_NE(std::string(e.what()).find(c.constraint), std::string::npos) << e.what();
    }
  }
}

TEST(EventColumnChecksTest, EdgeCasesAreAcceptedByBoth) {
  auto store = make_store();
  for (auto c : accepted_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_NO_THROW(insert_as_superuser(c.row));
    c.row.stream_id += "c";  // the client's copy goes to a stream of its own
    if (c.row.stream_id.size() > StreamId::kMaxBytes) c.row.stream_id.erase(0, 1);
    c.row.event_id = EventId::generate().to_string();
    EXPECT_FALSE(client_refuses(*store, c.row));
  }
}

TEST(EventColumnChecksTest, MigrationValidatesTheRowsAlreadyStored) {
  // A plain ADD CONSTRAINT (on the table in 0007, on the columns' domains since 0010): the
  // constraints are valid, i.e. were checked against existing rows.
  pqxx::connection connection(annals::testing::test_database_url());
  pqxx::nontransaction tx(connection);
  const auto rows = tx.exec(
      "SELECT conname, convalidated FROM pg_constraint"
      " WHERE contype = 'c' AND (conrelid = 'annals.events'::regclass"
      "    OR contypid IN (SELECT atttypid FROM pg_attribute"
      "                     WHERE attrelid = 'annals.events'::regclass))"
      " ORDER BY conname");
  std::set<std::string> valid;
  for (const auto& row : rows) {
    if (row[1].as<bool>()) valid.insert(row[0].as<std::string>());
  }
  for (const char* name : {"events_stream_id_check", "events_event_type_check",
                           "events_event_id_check", "events_metadata_check"}) {
    EXPECT_EQ(valid.count(name), 1u) << name;
  }
}

// --- Readers survive bad rows -------------------------------------------------------------------

// One kind of bad row: what is inserted, the constraint dropped first, and what the reason of
// the undecodable event must contain.
struct BadKind {
  Row row;
  std::vector<std::string> dropped;
  std::string reason;
};

class BadRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = make_store();
    category_ = "badrows" + random_hex().substr(0, 8);
    start_ = store_->head_position();
    bad_ = {
        {{.stream_id = category_ + "-a\nb"},
         {"events_stream_id_check"},
         "contains control character U+000A"},
        {{.stream_id = category_ + "-" + std::string(600, 'x')},
         {"events_stream_id_check"},
         "over the limit of 512 bytes"},
        // One empty stream id for every test of the process: each adds the next version.
        {{.stream_id = "", .version = ++empty_stream_version_},
         {"events_stream_id_check"},
         "it is empty"},
        {{.stream_id = category_ + "-type", .type = "Bad\tType"},
         {"events_event_type_check"},
         "contains control character U+0009"},
        {{.stream_id = category_ + "-meta", .metadata = "[1]"},
         {"events_metadata_check"},
         "metadata is a JSON array"},
        {{.stream_id = category_ + "-schema", .schema_version = 0},
         {"events_schema_version_check"},
         "schema version 0"},
        // JSON nested far deeper than kMaxJsonDepth, as arrays and as objects. 10,000 levels:
        // PostgreSQL's jsonb input refuses 20,000 under its default max_stack_depth (2MB).
        {{.stream_id = category_ + "-deeparray", .data = deep_array(kStoredDepth)},
         {},
         "stored data is refused: the text is JSON nested 10000 levels deep, over the limit of "
         "512 levels"},
        {{.stream_id = category_ + "-deepobject", .data = deep_object(kStoredDepth)},
         {},
         "stored data is refused: the text is JSON nested 10000 levels deep"},
    };
    for (auto& kind : bad_) positions_.push_back(insert_as_superuser(kind.row, kind.dropped));
    numbers_ = Row{.stream_id = category_ + "-numbers",
                   .data = "{\"over\": 1e400, \"under\": -1e400, \"long\": " + long_integer() +
                           ", \"tiny\": 1e-400, \"fine\": 1.5, \"big\": 1e300}"};
    positions_.push_back(insert_as_superuser(numbers_));
    good_ = store_
                ->append(StreamId(category_ + "-good"), ExpectedVersion::no_stream(),
                         {NewEvent{.type = "Good", .data = {{"n", 1}}}})
                .position;
    positions_.push_back(good_);
    // The global log shows settled events only: another test process's transaction still open
    // (one that changes the rules' constraints, say) keeps these rows back for a while.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (store_->head_position() < good_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  static std::string long_integer() {
    std::string digits;
    for (int i = 0; i < 40; ++i) digits += "1234567890";
    return digits;  // 400 digits
  }

  // Every event after start_, up to and including the good one, read `page` at a time.
  std::vector<RecordedEvent> read_through_good(std::size_t page) {
    std::vector<RecordedEvent> events;
    annals::ReadAllOptions options{.after = start_, .max_count = page};
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (events.empty() || events.back().position < good_) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the good event never arrived";
        break;
      }
      auto batch = store_->read_all(options);
      if (batch.empty()) {
        std::this_thread::sleep_for(1ms);  // back-off while the log settles, not a sync
        continue;
      }
      options.after = batch.back().position;
      for (auto& event : batch) events.push_back(std::move(event));
    }
    return events;
  }

  void expect_bad(const RecordedEvent& event, const BadKind& kind) {
    ASSERT_TRUE(event.is_undecodable()) << event.stream_id.value();
    const auto& failure = *event.decode_failure;
    EXPECT_NE(failure.reason.find(kind.reason), std::string::npos) << failure.reason;
    EXPECT_EQ(failure.stream_id, kind.row.stream_id);
    EXPECT_EQ(failure.type, kind.row.type);
    EXPECT_EQ(json::parse(failure.metadata), json::parse(kind.row.metadata));
    EXPECT_EQ(event.id.to_string(), kind.row.event_id);
    EXPECT_EQ(event.schema_version, kind.row.schema_version);
  }

  void expect_exact_numbers(const RecordedEvent& event) {
    ASSERT_FALSE(event.is_undecodable()) << event.decode_failure->reason;
    pqxx::connection connection(annals::testing::test_database_url());
    pqxx::nontransaction tx(connection);
    const auto stored = tx.exec_params1(
        "SELECT data->>'over', data->>'under', data->>'long', data->>'tiny' FROM annals.events"
        " WHERE stream_id = $1",
        numbers_.stream_id);
    EXPECT_EQ(stored[0].as<std::string>(), "1" + std::string(400, '0'));
    EXPECT_EQ(event.data["over"], json(stored[0].as<std::string>()));
    EXPECT_EQ(event.data["under"], json(stored[1].as<std::string>()));
    EXPECT_EQ(event.data["long"], json(long_integer()));
    EXPECT_EQ(event.data["tiny"], json(stored[3].as<std::string>()));
    EXPECT_EQ(event.data["fine"], json(1.5));
    EXPECT_TRUE(event.data["big"].is_number_float());  // a double holds 1e300: still a number
  }

  static inline std::int64_t empty_stream_version_ = 0;
  std::unique_ptr<annals::EventStore> store_;
  std::string category_;
  Position start_;
  std::vector<BadKind> bad_;
  Row numbers_;
  Position good_;                    // of the good event, appended by the client
  std::vector<Position> positions_;  // of bad_, numbers_ and good_, in that order
};

TEST_F(BadRowsTest, ReadAllDeliversBadRowsMarkedAndGoesOn) {
  for (const std::size_t page : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
    SCOPED_TRACE("page of " + std::to_string(page));
    const auto events = read_through_good(page);
    ASSERT_EQ(events.size(), bad_.size() + 2);
    for (std::size_t i = 0; i < bad_.size(); ++i) {
      EXPECT_EQ(events[i].position, positions_[i]);
      expect_bad(events[i], bad_[i]);
    }
    expect_exact_numbers(events[bad_.size()]);
    EXPECT_FALSE(events.back().is_undecodable());
    EXPECT_EQ(events.back().data, json({{"n", 1}}));
  }
}

TEST_F(BadRowsTest, ReadStreamDeliversABadRowMarked) {
  const auto events = store_->read_stream(StreamId(category_ + "-type"));
  ASSERT_EQ(events.size(), 1u);
  expect_bad(events[0], bad_[3]);
  EXPECT_EQ(events[0].type, "Bad\tType");
  const auto numbers = store_->read_stream(StreamId(numbers_.stream_id));
  ASSERT_EQ(numbers.size(), 1u);
  expect_exact_numbers(numbers[0]);
}

TEST_F(BadRowsTest, AFilteredReadDeliversBadRowsOfItsCategory) {
  annals::ReadAllOptions options{.after = start_, .max_count = 100};
  options.filter.category = category_;
  const auto events = store_->read_all(options);
  // The empty stream id has no category; the other five bad rows and the two good ones match.
  ASSERT_EQ(events.size(), bad_.size() + 1);
  EXPECT_TRUE(events[0].is_undecodable());
  EXPECT_EQ(events[0].stream_id.category(), category_);  // the replacement keeps the category
}

// The store reads recorded times in binary form (microseconds since 2000-01-01). The owner can
// store times no clock holds: 'infinity', '-infinity', year 294,276. They are delivered
// (saturated to the clock's ends), not a CorruptionError that would stop every reader there.
TEST_F(BadRowsTest, RecordedTimesNoClockHoldsAreDeliveredSaturated) {
  const std::string stream = category_ + "-times";
  {
    pqxx::connection connection(annals::testing::test_database_url());
    pqxx::work tx(connection);
    const char* times[] = {"infinity", "-infinity", "294276-12-31 23:59:59+00"};
    std::int64_t version = 0;
    for (const char* time : times) {
      tx.exec_params0(
          "INSERT INTO annals.events (transaction_id, stream_id, stream_version, event_id,"
          "   event_type, schema_version, data, metadata, recorded_at, hash)"
          " VALUES (pg_current_xact_id(), $1, $2, gen_random_uuid(), 'Fine', 1, '{}', '{}',"
          "   $3::timestamptz, '\\x00')",
          stream, ++version, time);
    }
    tx.commit();
  }
  const auto events = store_->read_stream(StreamId(stream));
  ASSERT_EQ(events.size(), 3u);
  using Clock = std::chrono::system_clock;
  const auto most =
      std::chrono::time_point_cast<std::chrono::microseconds>(Clock::time_point::max());
  const auto least =
      std::chrono::time_point_cast<std::chrono::microseconds>(Clock::time_point::min());
  EXPECT_EQ(std::chrono::time_point_cast<std::chrono::microseconds>(events[0].recorded_at), most);
  EXPECT_EQ(std::chrono::time_point_cast<std::chrono::microseconds>(events[1].recorded_at), least);
  EXPECT_EQ(std::chrono::time_point_cast<std::chrono::microseconds>(events[2].recorded_at), most);
  for (const auto& event : events) EXPECT_FALSE(event.is_undecodable());
}

std::vector<std::string> raw_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> lines;
  for (const auto& line : raw_lines(text)) lines.push_back(json::parse(line));
  return lines;
}

TEST_F(BadRowsTest, CliReadAllPrintsBadRowsAndExitsSeven) {
  const auto result = annals::testing::run_process(
      {ANNALS_CLI_PATH, "--db", annals::testing::test_database_url(), "read-all", "--from",
       start_.to_string(), "--limit", std::to_string(bad_.size() + 2)});
  EXPECT_EQ(result.exit_code, 7) << result;
  EXPECT_NE(
      result.err.find("annals: " + std::to_string(bad_.size()) + " event(s) could not be decoded"),
      std::string::npos)
      << result;
  const auto lines = json_lines(result.out);
  ASSERT_EQ(lines.size(), bad_.size() + 2) << result;
  for (std::size_t i = 0; i < bad_.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(lines[i]["stream"], bad_[i].row.stream_id);
    EXPECT_EQ(lines[i]["type"], bad_[i].row.type);
    EXPECT_EQ(lines[i]["position"], positions_[i].to_string());
    EXPECT_EQ(lines[i]["metadata"], json::parse(bad_[i].row.metadata));
    ASSERT_TRUE(lines[i].contains("undecodable"));
    EXPECT_NE(lines[i]["undecodable"].get<std::string>().find(bad_[i].reason), std::string::npos);
    // The keys of every event line, in their order, then "undecodable" last.
    const auto ordered = nlohmann::ordered_json::parse(raw_lines(result.out)[i]);
    std::vector<std::string> keys;
    for (const auto& item : ordered.items()) keys.push_back(item.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"stream", "version", "position", "event_id", "type",
                                              "schema_version", "data", "metadata", "recorded_at",
                                              "undecodable"}));
  }
  EXPECT_EQ(lines[bad_.size()]["data"]["over"], json("1" + std::string(400, '0')));
  EXPECT_EQ(lines[bad_.size()]["data"]["long"], json(long_integer()));
  EXPECT_FALSE(lines[bad_.size()].contains("undecodable"));
  EXPECT_EQ(lines.back()["data"], json({{"n", 1}}));
  EXPECT_FALSE(lines.back().contains("undecodable"));
}

TEST_F(BadRowsTest, CliReadPrintsABadRowAndExitsSeven) {
  const auto result = annals::testing::run_process(
      {ANNALS_CLI_PATH, "--db", annals::testing::test_database_url(), "read", category_ + "-meta"});
  EXPECT_EQ(result.exit_code, 7) << result;
  const auto lines = json_lines(result.out);
  ASSERT_EQ(lines.size(), 1u) << result;
  EXPECT_EQ(lines[0]["metadata"], json::array({1}));
  EXPECT_NE(lines[0]["undecodable"].get<std::string>().find("metadata is a JSON array"),
            std::string::npos);
  // A stream without bad rows still exits 0.
  const auto good = annals::testing::run_process(
      {ANNALS_CLI_PATH, "--db", annals::testing::test_database_url(), "read", category_ + "-good"});
  EXPECT_EQ(good.exit_code, 0) << good;
}

TEST_F(BadRowsTest, SubscriptionDeliversBadRowsAndContinues) {
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<RecordedEvent> seen;
  auto subscription =
      store_->subscribe(annals::SubscriptionOptions{.after = start_, .batch_size = 2},
                        [&](const RecordedEvent& event) {
                          std::lock_guard lock(mutex);
                          seen.push_back(event);
                          arrived.notify_all();
                        });
  std::unique_lock lock(mutex);
  ASSERT_TRUE(
      arrived.wait_for(lock, 30s, [&] { return !seen.empty() && seen.back().position >= good_; }))
      << "delivered " << seen.size();
  ASSERT_EQ(seen.size(), bad_.size() + 2);
  for (std::size_t i = 0; i < bad_.size(); ++i) expect_bad(seen[i], bad_[i]);
  expect_exact_numbers(seen[bad_.size()]);
  EXPECT_TRUE(subscription->is_running());
  lock.unlock();
  subscription->stop();
  EXPECT_EQ(subscription->stop_reason(), nullptr);
}

// Counts what it is given; the runner must never give it an undecodable event.
class Recorder final : public annals::projections::InProcessProjection {
 public:
  explicit Recorder(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void handle(const RecordedEvent& event) override {
    std::lock_guard lock(mutex_);
    if (event.is_undecodable()) ++undecodable_;
    ids_.insert(event.id.to_string());
  }
  bool saw(const std::string& id) const {
    std::lock_guard lock(mutex_);
    return ids_.count(id) != 0;
  }
  int undecodable() const {
    std::lock_guard lock(mutex_);
    return undecodable_;
  }

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::set<std::string> ids_;
  int undecodable_ = 0;
};

void expect_parked_and_continued(annals::EventStore& events,
                                 annals::projections::ProjectionStore& projections,
                                 const std::vector<BadKind>& bad, const Row& numbers,
                                 Position good) {
  namespace p = annals::projections;
  auto recorder = std::make_shared<Recorder>("badrows_" + random_hex().substr(0, 8));
  p::ProjectionRunner runner(events, projections,
                             {.acquire_interval = 10ms, .poll_interval = 50ms});
  // The default failure policy (stop) does not apply: an undecodable event is parked anyway.
  runner.add(recorder, {.batch_size = 4});
  runner.start();
  ASSERT_TRUE(runner.wait_for(recorder->name(), good, 60s))
      << runner.status(recorder->name()).last_error.value_or("");
  runner.stop();
  EXPECT_EQ(recorder->undecodable(), 0);
  EXPECT_TRUE(recorder->saw(numbers.event_id));
  EXPECT_NE(runner.status(recorder->name()).state, p::ProjectionState::kFailed);

  const auto letters = projections.list_dead_letters({.projection = recorder->name()});
  std::set<std::string> parked;
  for (const auto& letter : letters) {
    parked.insert(letter.event.id.to_string());
    EXPECT_EQ(letter.attempts, 1);
    EXPECT_EQ(letter.state, p::DeadLetterState::kParked);
    EXPECT_EQ(letter.error.rfind("undecodable event: ", 0), 0u) << letter.error;
    ASSERT_TRUE(letter.event.is_undecodable());
  }
  for (const auto& kind : bad) {
    SCOPED_TRACE(kind.reason);
    EXPECT_EQ(parked.count(kind.row.event_id), 1u);
    EXPECT_FALSE(recorder->saw(kind.row.event_id));
    for (const auto& letter : letters) {
      if (letter.event.id.to_string() != kind.row.event_id) continue;
      // Kept as stored: the stream id the client refuses included.
      EXPECT_EQ(letter.event.decode_failure->stream_id, kind.row.stream_id);
      EXPECT_EQ(letter.event.decode_failure->type, kind.row.type);
      EXPECT_NE(letter.error.find(kind.reason), std::string::npos) << letter.error;
    }
  }
}

TEST_F(BadRowsTest, ProjectionOnTheInMemoryStoreParksBadRowsAndContinues) {
  auto projections = annals::projections::make_in_memory_projection_store();
  expect_parked_and_continued(*store_, *projections, bad_, numbers_, good_);
}

TEST_F(BadRowsTest, ProjectionOnThePostgresStoreParksBadRowsAndContinues) {
  auto projections = annals::projections::make_postgres_projection_store(
      {.connection_string = annals::testing::test_database_url()});
  expect_parked_and_continued(*store_, *projections, bad_, numbers_, good_);
}

annals::EventRegistry account_events() {
  annals::EventRegistry registry;
  registry.register_events<bank::Account>();
  return registry;
}

// An account opened and saved through the repository; each test then adds a bad row of its
// own as version 2 of the account's stream, as the superuser.
class BadRowsRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto account = accounts_.load(id_);
    account.execute(bank::OpenAccount{id_, "ada"});
    accounts_.save(account);
  }

  // A deposit as the account's second event, with `data` and `metadata` as given.
  Row deposit(std::string data, std::string metadata = "{}") const {
    return Row{.stream_id = "account-" + id_,
               .type = "MoneyDeposited",
               .data = std::move(data),
               .metadata = std::move(metadata),
               .version = 2};
  }

  // Loading the account fails with a CorruptionError whose message contains every one of
  // `parts`.
  void expect_load_fails_with_corruption(const std::vector<std::string>& parts) {
    try {
      static_cast<void>(accounts_.load(id_));
      ADD_FAILURE() << "loaded";
    } catch (const annals::CorruptionError& e) {
      const std::string message = e.what();
      for (const auto& part : parts) {
        EXPECT_NE(message.find(part), std::string::npos) << part << " not in: " << message;
      }
    }
  }

  std::unique_ptr<annals::EventStore> store_ = make_store();
  annals::EventRegistry registry_ = account_events();
  annals::Repository<bank::Account> accounts_{*store_, registry_};
  std::string id_ = random_hex();
};

TEST_F(BadRowsRepositoryTest, LoadingAStreamWithABadRowFailsWithCorruptionNamingTheEvent) {
  const Row bad = deposit("{\"amount\": 5}", "[1]");
  insert_as_superuser(bad, {"events_metadata_check"});
  expect_load_fails_with_corruption(
      {bad.event_id, "version 2 of stream \"account-" + id_ + "\"", "metadata is a JSON array"});
}

TEST_F(BadRowsRepositoryTest, LoadingAStreamWithARowNestedTooDeepFailsWithCorruption) {
  const Row bad = deposit("{\"amount\": " + deep_array(kStoredDepth) + "}");
  insert_as_superuser(bad);
  expect_load_fails_with_corruption(
      {bad.event_id, "JSON nested 10001 levels deep, over the limit of 512 levels"});
}

}  // namespace
