// The ReadModel helpers on PostgreSQL: upsert, increment, remove and exec round-trip; hostile
// values are stored verbatim; bad identifiers are refused before any SQL is sent (the batch's
// transaction stays usable, which it would not after a failed statement); statements are
// prepared once per connection.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "read_model_support.hpp"

namespace annals::projections {
namespace {

using testing::Admin;
using testing::event_at;
using ::testing::HasSubstr;
using testing::LambdaReadModel;
using testing::make_store;
using ::testing::Not;
using testing::unique_name;

constexpr std::chrono::milliseconds kLongTtl{60'000};

// Runs test code inside the handler of a read model with these tables:
//   <p>_accounts (account_id text, currency text, balance bigint, active boolean, meta jsonb,
//                 ratio double precision, note text, PRIMARY KEY (account_id, currency))
//   <p>_words    ("order" text PRIMARY KEY, "user" text)  (reserved words as column names)
//   <schema>.tally (k text PRIMARY KEY, n bigint)          (a schema-qualified table)
class ReadModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = unique_name("rm");
    schema_ = name_ + "_s";
    projection_ = std::make_unique<LambdaReadModel>(
        name_, [this](const RecordedEvent&, ReadModel& db) { body_(db); });
    projection_->migrations_ = {
        {"0001_accounts", "CREATE TABLE " + accounts() +
                              " (account_id text, currency text, balance bigint, active boolean,"
                              " meta jsonb, ratio double precision, note text,"
                              " PRIMARY KEY (account_id, currency))"},
        {"0002_words", "CREATE TABLE " + words() + " (\"order\" text PRIMARY KEY, \"user\" text)"},
        {"0003_tally", "CREATE SCHEMA " + schema_ + "; CREATE TABLE " + tally() +
                           " (k text PRIMARY KEY, n bigint)"},
    };
    store_ = make_store(1);
    store_->prepare(*projection_);
    lease_ = store_->try_acquire(name_, "test", kLongTtl).value();
  }

  void TearDown() override { admin_.query("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE"); }

  std::string accounts() const { return name_ + "_accounts"; }
  std::string words() const { return name_ + "_words"; }
  std::string tally() const { return schema_ + ".tally"; }

  // Applies one event whose handler runs `body`, and commits; `pipelined` as the runner's
  // batches are (Batch::set_pipelined).
  void run(const std::function<void(ReadModel&)>& body, bool pipelined = false) {
    body_ = body;
    const Position next(1, at_.sequence() + 1);
    auto batch = store_->begin(lease_, at_);
    batch->set_pipelined(pipelined);
    projection_->apply(event_at(next, nlohmann::json::object()), *batch);
    batch->commit(next);
    at_ = next;
  }

  Admin admin_;
  std::string name_;
  std::string schema_;
  std::unique_ptr<LambdaReadModel> projection_;
  std::unique_ptr<ProjectionStore> store_;
  Lease lease_;
  Position at_;
  std::function<void(ReadModel&)> body_;
};

TEST_F(ReadModelTest, UpsertInsertsThenUpdatesOnlyTheValueColumns) {
  run([&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "a1"}, {"currency", "EUR"}},
              {{"balance", 10},
               {"active", true},
               {"meta", {{"tier", "gold"}, {"tags", {1, 2}}}},
               {"ratio", 0.25},
               {"note", "first"}});
  });
  EXPECT_EQ(admin_.value("SELECT concat_ws('|', balance, active, meta::text, ratio, note) FROM " +
                         accounts() + " WHERE account_id = 'a1' AND currency = 'EUR'"),
            "10|t|{\"tags\": [1, 2], \"tier\": \"gold\"}|0.25|first");
  run([&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "a1"}, {"currency", "EUR"}},
              {{"note", nullptr}, {"active", false}});
  });
  EXPECT_EQ(admin_.value("SELECT concat_ws('|', balance, active, coalesce(note, 'NULL')) FROM " +
                         accounts()),
            "10|f|NULL");
  // No value columns: insert when missing, otherwise leave the row alone.
  run([&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "a1"}, {"currency", "EUR"}}, nlohmann::json::object());
    db.upsert(accounts(), {{"account_id", "a2"}, {"currency", "EUR"}}, nlohmann::json::object());
  });
  EXPECT_EQ(admin_.value("SELECT string_agg(account_id || ':' || coalesce(balance::text, '-'),"
                         " ',' ORDER BY account_id) FROM " +
                         accounts()),
            "a1:10,a2:-");
}

TEST_F(ReadModelTest, IncrementAddsAndCreatesMissingRows) {
  run([&](ReadModel& db) {
    db.increment(accounts(), {{"account_id", "a1"}, {"currency", "EUR"}}, "balance", 5);
    db.increment(accounts(), {{"account_id", "a1"}, {"currency", "EUR"}}, "balance", -2);
    db.increment(accounts(), {{"account_id", "a1"}, {"currency", "USD"}}, "balance", 7);
  });
  EXPECT_EQ(admin_.value("SELECT string_agg(currency || '=' || balance, ',' ORDER BY currency)"
                         " FROM " +
                         accounts()),
            "EUR=3,USD=7");
  // A NULL counter counts from zero; large values keep every digit.
  run([&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "a2"}, {"currency", "EUR"}}, {{"balance", nullptr}});
    db.increment(accounts(), {{"account_id", "a2"}, {"currency", "EUR"}}, "balance",
                 4'000'000'000'000'000'000);
    db.increment(tally(), {{"k", "x"}}, "n", 1);
    db.increment(tally(), {{"k", "x"}}, "n", 1);
  });
  EXPECT_EQ(admin_.value("SELECT balance FROM " + accounts() + " WHERE account_id = 'a2'"),
            "4000000000000000000");
  EXPECT_EQ(admin_.value("SELECT n FROM " + tally() + " WHERE k = 'x'"), "2");
}

TEST_F(ReadModelTest, RemoveDeletesMatchingRowsAndCountsThem) {
  std::vector<std::int64_t> removed;
  run([&](ReadModel& db) {
    for (const auto* currency : {"EUR", "USD", "GBP"}) {
      db.upsert(accounts(), {{"account_id", "a1"}, {"currency", currency}}, {{"balance", 1}});
    }
    removed.push_back(db.remove(accounts(), {{"account_id", "a1"}, {"currency", "USD"}}));
    removed.push_back(db.remove(accounts(), {{"account_id", "a1"}, {"currency", "USD"}}));
    removed.push_back(db.remove(accounts(), {{"account_id", "a1"}}));
  });
  EXPECT_EQ(removed, (std::vector<std::int64_t>{1, 0, 2}));
  EXPECT_EQ(admin_.count(accounts()), 0);
}

TEST_F(ReadModelTest, ExecReturnsTypedRowsAndTakesParameters) {
  std::vector<nlohmann::json> rows;
  std::vector<nlohmann::json> affected;
  run([&](ReadModel& db) {
    affected = db.exec("INSERT INTO " + accounts() +
                           " (account_id, currency, balance, active, meta, ratio, note)"
                           " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                       {"a1", "EUR", 42, true, {{"k", {1, "two"}}}, 1.5, nullptr});
    rows = db.exec(
        "SELECT account_id, balance, active, meta, ratio, note,"
        " balance::numeric / 4 AS quarter, 12345678901234567890::numeric AS big,"
        " 'NaN'::numeric AS nan, now() IS NOT NULL AS has_time"
        " FROM " +
            accounts() + " WHERE account_id = $1 AND balance >= $2",
        {"a1", 40});
  });
  EXPECT_TRUE(affected.empty());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], nlohmann::json::parse(R"({"account_id": "a1", "balance": 42,
      "active": true, "meta": {"k": [1, "two"]}, "ratio": 1.5, "note": null, "quarter": 10.5,
      "big": 12345678901234567890, "nan": "NaN", "has_time": true})"));
}

// Read-model rows holding JSON nested far deeper than annals::kMaxJsonDepth, as the table's
// owner can store them: a json column 100,000 levels deep (PostgreSQL's own json input refuses
// that under any max_stack_depth an 8 MiB stack allows, so the owner bypasses it with a
// binary-coercible cast, created and dropped inside the inserting transaction, never seen by
// another session) and a jsonb column 10,000 levels deep. exec() refuses each value before
// parsing it, with CorruptionError naming the projection, the column and the depth, and the
// batch stays usable for the rows that are within the limit.
TEST_F(ReadModelTest, ExecRefusesJsonColumnsNestedDeeperThanTheLimit) {
  const std::string table = schema_ + ".deep";
  admin_.query("CREATE TABLE " + table + " (k int PRIMARY KEY, doc json, meta jsonb)");
  {
    pqxx::work tx(admin_.connection());
    tx.exec0("CREATE CAST (text AS json) WITHOUT FUNCTION");
    tx.exec0("INSERT INTO " + table +
             " VALUES (1, (repeat('[', 100000) || repeat(']', 100000))::text::json, NULL)");
    tx.exec0("DROP CAST (text AS json)");
    tx.exec0("INSERT INTO " + table +
             " VALUES (2, NULL, (repeat('{\"a\": ', 10000) || '1' || repeat('}', 10000))::jsonb),"
             "        (3, '[[1]]', '{\"a\": {\"b\": 2}}')");
    tx.commit();
  }
  ASSERT_EQ(admin_.value("SELECT length(doc::text) FROM " + table + " WHERE k = 1"), "200000");

  const std::vector<std::pair<int, std::string>> deep = {
      {1,
       "column \"doc\" of a row read by exec() is refused: the value is JSON nested 100000 "
       "levels deep, over the limit of 512 levels"},
      {2,
       "column \"meta\" of a row read by exec() is refused: the value is JSON nested 10000 "
       "levels deep, over the limit of 512 levels"}};
  for (const auto& [k, expected] : deep) {
    std::string message;
    std::vector<nlohmann::json> shallow;
    run([&](ReadModel& db) {
      try {
        static_cast<void>(db.exec("SELECT doc, meta FROM " + table + " WHERE k = $1", {k}));
        ADD_FAILURE() << "row " << k << " was decoded";
      } catch (const CorruptionError& e) {
        message = e.what();
      }
      shallow = db.exec("SELECT doc, meta FROM " + table + " WHERE k = $1", {3});
    });
    EXPECT_EQ(message, "projection \"" + name_ + "\": " + expected);
    ASSERT_EQ(shallow.size(), 1u);
    EXPECT_EQ(shallow[0], nlohmann::json::parse(R"({"doc": [[1]], "meta": {"a": {"b": 2}}})"));
  }
  // Every row at once: refused as a whole, no partial result.
  EXPECT_THROW(run([&](ReadModel& db) { static_cast<void>(db.exec("SELECT * FROM " + table)); }),
               CorruptionError);
}

TEST_F(ReadModelTest, HostileValuesAreStoredVerbatim) {
  const std::vector<std::string> hostile = {
      "O'Brien",
      "'); DROP TABLE annals.events; --",
      "semi;colon; \"double\" `back` \\ backslash \\\\",
      "$1 $$ $tag$ ? :name %s {}",
      "line\nbreak\ttab\r\n",
      "caf\u00e9 \u65e5\u672c\u8a9e \U0001F600 \u202e",
      std::string(10'000, 'x') + "'",
      "",
  };
  run([&](ReadModel& db) {
    for (std::size_t i = 0; i < hostile.size(); ++i) {
      db.upsert(accounts(), {{"account_id", hostile[i]}, {"currency", std::to_string(i)}},
                {{"note", hostile[i]}, {"meta", {{"v", hostile[i]}}}});
      db.upsert(words(), {{"order", hostile[i]}}, {{"user", hostile[i]}});
    }
  });
  std::vector<nlohmann::json> back;
  run([&](ReadModel& db) {
    back = db.exec("SELECT account_id, note, meta FROM " + accounts() + " ORDER BY currency::int");
  });
  ASSERT_EQ(back.size(), hostile.size());
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    EXPECT_EQ(back[i]["account_id"], hostile[i]);
    EXPECT_EQ(back[i]["note"], hostile[i]);
    EXPECT_EQ(back[i]["meta"]["v"], hostile[i]);
  }
  EXPECT_EQ(admin_.count(words()), static_cast<std::int64_t>(hostile.size()));
  EXPECT_EQ(admin_.value("SELECT \"user\" FROM " + words() + " WHERE \"order\" = 'O''Brien'"),
            "O'Brien");
  EXPECT_EQ(admin_.value("SELECT to_regclass('annals.events') IS NOT NULL"), "t");
}

// Values that break SQL built as text, and text that stresses the driver: quotes, backslashes,
// dollar quotes, parameter markers, semicolons, control characters, multi-byte UTF-8 (emoji
// included), the empty string, and (last) more than 1 MiB made of all of them.
std::vector<std::string> awkward_values() {
  std::vector<std::string> values = {
      "O'Brien",
      "''",
      "'",
      "\\",
      "\\'",
      "back\\slash\\\\ end\\",
      "E'\\x41\\000'",
      "$$",
      "$$ inside $$; $$",
      "$tag$ x $tag$",
      "$1",
      "$2::int, $1 $3$",
      ";",
      "'); DROP TABLE annals.events; --",
      "a;b;c;",
      "\"double\" `back`",
      "%s %n {} ? :name",
      "line\nbreak\r\n\ttab\x01\x1f\x7f",
      "caf\u00e9 \u65e5\u672c\u8a9e \u202e \u00a0",
      "\U0001F600\U0001F680\U0001F468\u200D\U0001F469\u200D\U0001F467",
      "",
  };
  std::string big;
  while (big.size() <= (std::size_t{1} << 20)) {
    for (const auto& value : values) big += value + "|";
  }
  values.push_back(std::move(big));
  return values;
}

// Compares byte for byte without printing a megabyte on failure.
::testing::AssertionResult same_bytes(const std::string& actual, const std::string& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  std::size_t at = 0;
  while (at < actual.size() && at < expected.size() && actual[at] == expected[at]) ++at;
  return ::testing::AssertionFailure()
         << "differ at byte " << at << " (sizes " << actual.size() << " and " << expected.size()
         << "); expected begins \"" << expected.substr(0, 60) << "\"";
}

std::string text_of(const pqxx::field& field) { return std::string(field.c_str(), field.size()); }

// Every write helper (upsert, increment, remove, exec) with every awkward value, as a key, a
// value and a parameter, through `run` (a batch that sends each call at once, or a pipelined
// one): each value reads back byte for byte.
void feed_awkward_values(Admin& admin, const std::string& accounts, const std::string& words,
                         const std::function<void(const std::function<void(ReadModel&)>&)>& run) {
  const auto values = awkward_values();
  const auto& big = values.back();
  // The big value is no key: a btree index entry holds at most about 2.7 kB.
  const std::size_t keys = values.size() - 1;
  std::vector<std::int64_t> removed;
  std::vector<nlohmann::json> echoed;
  run([&](ReadModel& db) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const auto id = i < keys ? values[i] : "big";
      const auto n = std::to_string(i);
      db.upsert(accounts, {{"account_id", id}, {"currency", n}},
                {{"note", values[i]}, {"meta", {{"v", values[i]}}}});
      if (i < keys) {
        db.increment(accounts, {{"account_id", values[i]}, {"currency", "inc"}}, "balance",
                     static_cast<std::int64_t>(i) + 1);
        db.upsert(accounts, {{"account_id", values[i]}, {"currency", "rm"}}, {{"note", "x"}});
        removed.push_back(db.remove(accounts, {{"account_id", values[i]}, {"currency", "rm"}}));
      }
      static_cast<void>(db.exec("INSERT INTO " + words + " (\"order\", \"user\") VALUES ($1, $2)",
                                {n, values[i]}));
      const auto rows =
          db.exec("SELECT $1::text AS echo, $2::jsonb AS meta", {values[i], {{"v", values[i]}}});
      echoed.push_back(rows.at(0));
    }
  });
  EXPECT_EQ(removed, std::vector<std::int64_t>(keys, 1));
  ASSERT_EQ(echoed.size(), values.size());
  const auto stored = admin.query("SELECT account_id, note, meta->>'v' FROM " + accounts +
                                  " WHERE currency ~ '^[0-9]+$' ORDER BY currency::int");
  const auto counted = admin.query("SELECT account_id, balance FROM " + accounts +
                                   " WHERE currency = 'inc' ORDER BY balance");
  const auto inserted = admin.query("SELECT \"user\" FROM " + words + " ORDER BY \"order\"::int");
  ASSERT_EQ(stored.size(), values.size());
  ASSERT_EQ(counted.size(), keys);
  ASSERT_EQ(inserted.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    SCOPED_TRACE("value " + std::to_string(i));
    EXPECT_TRUE(same_bytes(text_of(stored[i][0]), i < keys ? values[i] : "big"));
    EXPECT_TRUE(same_bytes(text_of(stored[i][1]), values[i]));
    EXPECT_TRUE(same_bytes(text_of(stored[i][2]), values[i]));
    EXPECT_TRUE(same_bytes(text_of(inserted[i][0]), values[i]));
    EXPECT_TRUE(same_bytes(echoed[i].at("echo").get<std::string>(), values[i]));
    EXPECT_TRUE(same_bytes(echoed[i].at("meta").at("v").get<std::string>(), values[i]));
    if (i < keys) {
      EXPECT_TRUE(same_bytes(text_of(counted[i][0]), values[i]));
      EXPECT_EQ(counted[i][1].as<std::int64_t>(), static_cast<std::int64_t>(i) + 1);
    }
  }
  EXPECT_GT(big.size(), std::size_t{1} << 20);
}

// A value with a NUL byte is refused by each write helper with an InvalidArgumentError naming
// it, before any SQL, and nothing of that call is written (the batch goes on and commits).
void refuse_nul_values(Admin& admin, const std::string& accounts,
                       const std::function<void(const std::function<void(ReadModel&)>&)>& run) {
  const std::string nul("before\0after", 12);
  const nlohmann::json key = {{"account_id", "nul"}, {"currency", "EUR"}};
  const std::vector<std::pair<const char*, std::function<void(ReadModel&)>>> refusals = {
      {"upsert value",
       [&](ReadModel& db) {
         db.upsert(accounts, key, {{"note", nul}});
       }},
      {"upsert key",
       [&](ReadModel& db) {
         db.upsert(accounts, {{"account_id", nul}, {"currency", "EUR"}}, {{"note", "x"}});
       }},
      {"increment key",
       [&](ReadModel& db) {
         db.increment(accounts, {{"account_id", nul}, {"currency", "EUR"}}, "balance", 1);
       }},
      {"remove key",
       [&](ReadModel& db) {
         static_cast<void>(db.remove(accounts, {{"account_id", "nul"}, {"currency", nul}}));
       }},
      {"exec parameter",
       [&](ReadModel& db) {
         static_cast<void>(db.exec(
             "INSERT INTO " + accounts + " (account_id, currency) VALUES ('nul', $1)", {nul}));
       }},
  };
  const auto before = admin.count(accounts);
  run([&](ReadModel& db) {
    db.upsert(accounts, key, {{"note", "kept"}});
    for (const auto& [helper, call] : refusals) {
      SCOPED_TRACE(helper);
      try {
        call(db);
        ADD_FAILURE() << "a value with a NUL byte was accepted";
      } catch (const InvalidArgumentError& e) {
        EXPECT_THAT(e.what(), HasSubstr("NUL"));
      }
    }
  });
  EXPECT_EQ(admin.count(accounts), before + 1);
  EXPECT_EQ(admin.value("SELECT note FROM " + accounts + " WHERE account_id = 'nul'"), "kept");
  EXPECT_EQ(admin.value("SELECT count(*) FROM " + accounts +
                        " WHERE position('after' IN "
                        "account_id || currency || coalesce(note, '')) > 0"),
            "0");
}

TEST_F(ReadModelTest, AwkwardValuesRoundTripThroughEveryHelperSentAtOnce) {
  const auto at_once = [&](const std::function<void(ReadModel&)>& body) { run(body, false); };
  feed_awkward_values(admin_, accounts(), words(), at_once);
  refuse_nul_values(admin_, accounts(), at_once);
}

TEST_F(ReadModelTest, AwkwardValuesRoundTripThroughEveryHelperPipelined) {
  const auto pipelined = [&](const std::function<void(ReadModel&)>& body) { run(body, true); };
  feed_awkward_values(admin_, accounts(), words(), pipelined);
  refuse_nul_values(admin_, accounts(), pipelined);
}

// Expects InvalidArgumentError mentioning `mention` from `call`, and the transaction still
// usable afterwards (proof that no statement failed inside it).
void expect_rejected_before_sql(ReadModel& db, const std::string& table,
                                const std::function<void()>& call, const std::string& mention) {
  try {
    call();
    ADD_FAILURE() << "accepted; expected a rejection mentioning " << mention;
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr(mention));
  }
  EXPECT_NO_THROW(
      db.upsert(table, {{"account_id", "still-ok"}, {"currency", "EUR"}}, {{"balance", 1}}));
}

TEST_F(ReadModelTest, BadIdentifiersAreRejectedBeforeAnySql) {
  const std::vector<std::string> bad_tables = {
      "",
      "rows; DROP TABLE annals.events",
      "\"quoted\"",
      "a.b.c",
      ".rows",
      "rows.",
      "1rows",
      "ro ws",
      "r\u00f6ws",
      "rows\n",
      std::string(64, 'r'),
      "rows--x",
      "schema.\"t\"",
  };
  const std::vector<std::string> bad_columns = {
      "", "balance; --", "\"balance\"", "bal ance", "s.balance", "9lives", std::string(64, 'c'),
  };
  run([&](ReadModel& db) {
    const nlohmann::json key = {{"account_id", "a"}, {"currency", "EUR"}};
    for (const auto& table : bad_tables) {
      expect_rejected_before_sql(
          db, accounts(),
          [&] {
            db.upsert(table, key, {{"balance", 1}});
          },
          "invalid table name");
      expect_rejected_before_sql(
          db, accounts(), [&] { db.increment(table, key, "balance", 1); }, "invalid table name");
      expect_rejected_before_sql(
          db, accounts(), [&] { static_cast<void>(db.remove(table, key)); }, "invalid table name");
    }
    for (const auto& column : bad_columns) {
      expect_rejected_before_sql(
          db, accounts(),
          [&] {
            db.upsert(accounts(), key, {{column, 1}});
          },
          "invalid column name");
      expect_rejected_before_sql(
          db, accounts(),
          [&] {
            db.upsert(accounts(), {{column, "a"}}, {{"balance", 1}});
          },
          "invalid column name");
      expect_rejected_before_sql(
          db, accounts(), [&] { db.increment(accounts(), key, column, 1); }, "invalid column name");
      expect_rejected_before_sql(
          db, accounts(),
          [&] {
            static_cast<void>(db.remove(accounts(), {{column, "a"}}));
          },
          "invalid column name");
    }
    // Malformed keys and values.
    expect_rejected_before_sql(
        db, accounts(),
        [&] {
          db.upsert(accounts(), nlohmann::json::object(), {{"note", "x"}});
        },
        "key columns");
    expect_rejected_before_sql(
        db, accounts(),
        [&] {
          db.upsert(accounts(), "a1", {{"note", "x"}});
        },
        "key columns");
    expect_rejected_before_sql(
        db, accounts(), [&] { db.upsert(accounts(), key, nlohmann::json::array()); },
        "value columns");
    expect_rejected_before_sql(
        db, accounts(),
        [&] {
          db.upsert(accounts(), key, {{"account_id", "b"}});
        },
        "both a key and a value");
    expect_rejected_before_sql(
        db, accounts(),
        [&] {
          db.upsert(accounts(), {{"account_id", nullptr}, {"currency", "EUR"}}, {});
        },
        "is null");
    expect_rejected_before_sql(
        db, accounts(), [&] { db.increment(accounts(), key, "currency", 1); },
        "cannot increment key column");
    expect_rejected_before_sql(
        db, accounts(),
        [&] {
          db.upsert(accounts(), key, {{"note", std::string("nul\0byte", 8)}});
        },
        "NUL");
    expect_rejected_before_sql(
        db, accounts(), [&] { static_cast<void>(db.exec("SELECT $1, $2", {1})); },
        "takes 2 parameters");
    expect_rejected_before_sql(
        db, accounts(), [&] { static_cast<void>(db.exec("SELECT '$1', \"$2\" -- $3\n", {1})); },
        "takes 0 parameters");
  });
  EXPECT_EQ(admin_.value("SELECT balance FROM " + accounts() + " WHERE account_id = 'still-ok'"),
            "1");
  EXPECT_EQ(admin_.value("SELECT to_regclass('annals.events') IS NOT NULL"), "t");
}

TEST_F(ReadModelTest, ErrorMessagesNameTheProjectionAndTheTable) {
  auto batch = store_->begin(lease_, at_);
  body_ = [&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "a"}, {"currency", "EUR"}}, {{"balance", "ten"}});
  };
  try {
    projection_->apply(event_at(Position(1, 1), nlohmann::json::object()), *batch);
    FAIL() << "a text value went into a bigint column";
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr(name_));
    EXPECT_THAT(e.what(), HasSubstr(accounts()));
  }
}

TEST_F(ReadModelTest, StatementsArePreparedOncePerConnection) {
  const auto prepared = [&](ReadModel& db) {
    return db.exec("SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE 'annals_rm_%'")
        .at(0)
        .at("n")
        .get<std::int64_t>();
  };
  std::int64_t after_first = 0;
  std::int64_t after_many = 0;
  run([&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "a0"}, {"currency", "EUR"}}, {{"balance", 0}});
    db.increment(accounts(), {{"account_id", "a0"}, {"currency", "EUR"}}, "balance", 1);
    static_cast<void>(db.remove(accounts(), {{"account_id", "zz"}, {"currency", "EUR"}}));
    after_first = prepared(db);
  });
  for (int i = 1; i < 20; ++i) {
    run([&](ReadModel& db) {
      const nlohmann::json key = {{"account_id", "a" + std::to_string(i)}, {"currency", "EUR"}};
      db.upsert(accounts(), key, {{"balance", i}});
      db.increment(accounts(), key, "balance", i);
      static_cast<void>(db.remove(accounts(), {{"account_id", "zz"}, {"currency", "EUR"}}));
      after_many = prepared(db);
    });
  }
  // upsert, increment, remove and the counting SELECT itself: four statements, whatever the
  // number of calls (one connection: the store's pool has one).
  EXPECT_EQ(after_first, 4);
  EXPECT_EQ(after_many, 4);
  EXPECT_EQ(admin_.value("SELECT sum(balance) FROM " + accounts()), std::to_string(1 + 2 * 190));
}

// A pipelined batch (what the runner uses) queues upsert and increment and sends them with the
// checkpoint: values of every type and awkward text arrive as with bound parameters; exec()
// and remove() send the queue first and see its writes; a failing queued write fails the
// commit with DeferredWriteError and nothing of the batch (checkpoint included) is stored.
TEST_F(ReadModelTest, PipelinedBatchQueuesWritesAndCommitsThemWithTheCheckpoint) {
  const Position next(1, at_.sequence() + 1);
  auto batch = store_->begin(lease_, at_);
  batch->set_pipelined(true);
  const std::string awkward = "it's \\ a \"quote\"; DROP TABLE x; -- $1 \u00e9";
  std::int64_t removed = -1;
  std::vector<nlohmann::json> seen;
  body_ = [&](ReadModel& db) {
    const nlohmann::json key = {{"account_id", "p1"}, {"currency", "EUR"}};
    db.upsert(accounts(), key,
              {{"balance", 5},
               {"active", true},
               {"meta", {{"k", awkward}}},
               {"ratio", 0.25},
               {"note", awkward}});
    db.increment(accounts(), key, "balance", 7);
    db.upsert(accounts(), {{"account_id", "p2"}, {"currency", "EUR"}}, {{"note", nullptr}});
    removed = db.remove(accounts(), {{"account_id", "p2"}, {"currency", "EUR"}});
    db.increment(accounts(), key, "balance", 1);
    seen = db.exec(
        "SELECT balance, active, meta, ratio, note FROM " + accounts() + " WHERE account_id = $1",
        {"p1"});
  };
  projection_->apply(event_at(next, nlohmann::json::object()), *batch);
  EXPECT_EQ(removed, 1);
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].at("balance"), 13);
  EXPECT_EQ(seen[0].at("active"), true);
  EXPECT_EQ(seen[0].at("meta").at("k"), awkward);
  EXPECT_EQ(seen[0].at("ratio"), 0.25);
  EXPECT_EQ(seen[0].at("note"), awkward);
  body_ = [&](ReadModel& db) {
    db.increment(accounts(), {{"account_id", "p1"}, {"currency", "EUR"}}, "balance", 100);
  };
  projection_->apply(event_at(Position(1, next.sequence() + 1), nlohmann::json::object()), *batch);
  batch->commit(Position(1, next.sequence() + 1));
  batch.reset();  // returns the store's only connection
  at_ = Position(1, next.sequence() + 1);
  EXPECT_EQ(admin_.value("SELECT balance FROM " + accounts() + " WHERE account_id = 'p1'"), "113");
  EXPECT_EQ(store_->checkpoint(name_), at_);

  // A queued write that fails (text into a bigint column) fails the commit, not the call.
  auto failing = store_->begin(lease_, at_);
  failing->set_pipelined(true);
  body_ = [&](ReadModel& db) {
    db.increment(accounts(), {{"account_id", "p1"}, {"currency", "EUR"}}, "balance", 1);
    db.upsert(accounts(), {{"account_id", "p3"}, {"currency", "EUR"}}, {{"balance", "ten"}});
  };
  EXPECT_NO_THROW(projection_->apply(
      event_at(Position(1, at_.sequence() + 1), nlohmann::json::object()), *failing));
  try {
    failing->commit(Position(1, at_.sequence() + 1));
    FAIL() << "the queued write of text into a bigint column was committed";
  } catch (const DeferredWriteError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr(name_));
    EXPECT_THAT(e.what(), HasSubstr("queued read-model writes failed"));
    // The refusal itself, as the write alone would have thrown it (22P02: invalid input).
    ASSERT_NE(e.cause(), nullptr);
    try {
      std::rethrow_exception(e.cause());
    } catch (const DeferredWriteError&) {
      ADD_FAILURE() << "the cause is the DeferredWriteError itself";
    } catch (const InvalidArgumentError& cause) {
      EXPECT_STREQ(cause.what(), e.what());
    }
  }
  failing.reset();
  EXPECT_EQ(admin_.value("SELECT balance FROM " + accounts() + " WHERE account_id = 'p1'"), "113");
  EXPECT_EQ(admin_.value("SELECT count(*) FROM " + accounts() + " WHERE account_id = 'p3'"), "0");
  EXPECT_EQ(store_->checkpoint(name_), at_);

  // The same failure from a later call that needs an answer: exec() sends the queue first.
  auto later = store_->begin(lease_, at_);
  later->set_pipelined(true);
  body_ = [&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "p3"}, {"currency", "EUR"}}, {{"balance", "ten"}});
    static_cast<void>(db.exec("SELECT 1"));
  };
  EXPECT_THROW(projection_->apply(
                   event_at(Position(1, at_.sequence() + 1), nlohmann::json::object()), *later),
               DeferredWriteError);
  later.reset();
  EXPECT_EQ(store_->checkpoint(name_), at_);
}

// The guarded checkpoint write refused in a pipelined batch (here the lease was taken over
// while the batch ran): the queued writes did run, in the same pipeline, before the refused
// UPDATE, and the pipeline's Sync ends that pipeline only: inside the batch's transaction
// (BEGIN sent by libpqxx before) it commits nothing. The commit is refused and none of the
// batch's writes is stored.
TEST_F(ReadModelTest, PipelinedBatchWhoseCheckpointIsRefusedStoresNoneOfItsWrites) {
  const Position next(1, at_.sequence() + 1);
  auto batch = store_->begin(lease_, at_);
  batch->set_pipelined(true);
  body_ = [&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "r1"}, {"currency", "EUR"}}, {{"balance", 1}});
    db.increment(tally(), {{"k", "refused"}}, "n", 1);
  };
  projection_->apply(event_at(next, nlohmann::json::object()), *batch);
  admin_.query("UPDATE annals.projections SET fencing_token = fencing_token + 1 WHERE name = '" +
               name_ + "'");
  EXPECT_THROW(batch->commit(next), OwnershipLostError);
  batch.reset();
  EXPECT_EQ(admin_.value("SELECT count(*) FROM " + accounts() + " WHERE account_id = 'r1'"), "0");
  EXPECT_EQ(admin_.value("SELECT count(*) FROM " + tally() + " WHERE k = 'refused'"), "0");
  EXPECT_EQ(store_->checkpoint(name_), at_);
}

// A long queue (tens of thousands of executions, answered with about a megabyte, which may
// exceed the socket buffers) is sent with the checkpoint in one round trip, and every write
// counts once.
TEST_F(ReadModelTest, PipelinedBatchSendsALongQueue) {
  constexpr int kWrites = 40'000;
  run(
      [&](ReadModel& db) {
        for (int i = 0; i < kWrites; ++i) {
          db.increment(tally(), {{"k", "k" + std::to_string(i % 100)}}, "n", 1);
        }
      },
      true);
  EXPECT_EQ(admin_.value("SELECT count(*) || '/' || sum(n) FROM " + tally()),
            "100/" + std::to_string(kWrites));
  EXPECT_EQ(store_->checkpoint(name_), at_);
}

// A unique violation in a read-model table is the read model's, not an event id's: the
// message is neutral (error_translation's Origin::kReadModel), and so is a missing table.
TEST_F(ReadModelTest, ConstraintAndMissingTableMessagesAreAboutTheReadModel) {
  admin_.query("CREATE UNIQUE INDEX ON " + accounts() + " (note)");
  run([&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "u1"}, {"currency", "EUR"}}, {{"note", "same"}});
  });
  auto batch = store_->begin(lease_, at_);
  body_ = [&](ReadModel& db) {
    db.upsert(accounts(), {{"account_id", "u2"}, {"currency", "EUR"}}, {{"note", "same"}});
  };
  try {
    projection_->apply(event_at(Position(1, at_.sequence() + 1), nlohmann::json::object()), *batch);
    FAIL() << "a duplicate key went in";
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("violates a constraint of the read model"));
    EXPECT_THAT(e.what(), HasSubstr("23505"));
    EXPECT_THAT(e.what(), Not(HasSubstr("event id")));
  }
  batch.reset();
  auto missing = store_->begin(lease_, at_);
  body_ = [&](ReadModel& db) { db.increment(name_ + "_no_such_table", {{"k", "x"}}, "n", 1); };
  try {
    projection_->apply(event_at(Position(1, at_.sequence() + 1), nlohmann::json::object()),
                       *missing);
    FAIL() << "a missing table was written";
  } catch (const NotFoundError& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not exist"));
    EXPECT_THAT(e.what(), HasSubstr("42P01"));
    EXPECT_THAT(e.what(), Not(HasSubstr("annals migrate")));
  }
}

}  // namespace
}  // namespace annals::projections
