// Export and import of the log (annals/postgres/log_transfer.hpp): a round trip keeps every
// stored column and verifies; a changed, reordered or truncated file is refused naming the
// first bad event and writes nothing; a second import writes nothing; partial exports continue
// stored streams; conflicts with stored events are refused.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/log_transfer.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/verify.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::postgres::export_log;
using annals::postgres::import_log;
using annals::testing::random_hex;

// A migrated database of its own, dropped at the end of the test.
class Database : public annals::testing::ScratchDatabase {
 public:
  Database() : ScratchDatabase("annals_transfer") {}

  // Every stored column but the transaction id and position, in stream order, as text.
  [[nodiscard]] std::vector<std::string> rows() const {
    pqxx::connection c(url());
    pqxx::nontransaction tx(c);
    std::vector<std::string> out;
    for (const auto& row :
         tx.exec("SELECT concat_ws('|', stream_id, stream_version, event_id, event_type, "
                 "schema_version, data::text, metadata::text, recorded_at, encode(hash, 'hex'))"
                 " FROM annals.events ORDER BY stream_id, stream_version")) {
      out.push_back(row[0].as<std::string>());
    }
    return out;
  }
};

void fill(const std::string& url) {
  auto store = annals::postgres::make_postgres_event_store({.connection_string = url});
  const auto data = nlohmann::json::parse(
      R"({"owner": "Ada \"Lovelace\"; ü 😀 \\ \n\t", "n": 1.50, "big": 1e3, "neg": -0.0,
          "list": [1, [2, {"x": null}], true, "a, b: c"], "empty": {}, "none": []})");
  store->append(StreamId("acct-1"), ExpectedVersion::no_stream(),
                {NewEvent{.type = "Opened", .data = data, .metadata = {{"trace", "t-1"}}},
                 NewEvent{.type = "Deposited", .data = {{"amount", 10}}}});
  store->append(StreamId("order-7"), ExpectedVersion::no_stream(),
                {NewEvent{.type = "Placed", .data = {{"blob", std::string(100000, 'z')}}}});
  for (int i = 0; i < 3; ++i) {
    store->append(StreamId("acct-1"), ExpectedVersion::any(),
                  {NewEvent{.type = "Deposited", .data = {{"amount", i}}}});
  }
}

// The export once `lines` events are settled: an export holds back events of transactions
// that an older one still open anywhere on the server may precede (other tests hold some open
// on purpose), as every reader of the log does.
std::string exported(const std::string& url, std::size_t lines,
                     annals::postgres::ExportOptions options = {}) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    std::ostringstream out;
    const auto summary = export_log(url, options, out);
    if (static_cast<std::size_t>(summary.events) >= lines ||
        std::chrono::steady_clock::now() > deadline) {
      return out.str();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string write_file(const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("annals-import-" + random_hex(8));
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return text;
}

TEST(LogTransferTest, ARoundTripKeepsEveryStoredColumnAndVerifies) {
  Database source;
  Database target;
  fill(source.url());
  const auto text = exported(source.url(), 6);
  ASSERT_EQ(lines_of(text).size(), 6U);
  const auto first = nlohmann::json::parse(lines_of(text).front());
  for (const char* key : {"stream", "version", "position", "event_id", "type", "schema_version",
                          "data", "metadata", "recorded_at", "transaction_id", "hash"}) {
    EXPECT_TRUE(first.contains(key)) << key;
  }

  const auto file = write_file(text);
  const auto summary = import_log(target.url(), file);
  EXPECT_EQ(summary.events, 6);
  EXPECT_EQ(summary.written, 6);
  EXPECT_EQ(summary.streams, 2);
  EXPECT_EQ(target.rows(), source.rows());
  const auto report = annals::postgres::verify(target.url());
  EXPECT_TRUE(report.findings.empty()) << report.findings.front().message;

  // Again: nothing written.
  const auto again = import_log(target.url(), file);
  EXPECT_EQ(again.written, 0);
  EXPECT_EQ(again.already_stored, 6);
  EXPECT_EQ(target.rows(), source.rows());
  std::filesystem::remove(file);
}

// Each way of changing the file is refused before anything is written.
TEST(LogTransferTest, AChangedFileIsRefusedNamingTheFirstBadEventAndWritesNothing) {
  Database source;
  Database target;
  fill(source.url());
  const auto lines = lines_of(exported(source.url(), 6));

  auto edited = lines;
  const auto amount = edited[1].find("\"amount\":10");
  ASSERT_NE(amount, std::string::npos);
  edited[1].replace(amount, 11, "\"amount\":99");
  auto removed = lines;
  removed.erase(removed.begin() + 3);
  auto rehashed = lines;
  const auto hash = rehashed[2].find("\"hash\":\"") + 8;
  rehashed[2][hash] = rehashed[2][hash] == '0' ? '1' : '0';
  auto retimed = lines;
  const auto time = retimed[0].find("\"recorded_at\":\"") + 15 + 25;  // a microsecond digit
  retimed[0][time] = retimed[0][time] == '0' ? '1' : '0';

  for (const auto& [what, file_lines] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{{"edited data", edited},
                                                                     {"removed event", removed},
                                                                     {"changed hash", rehashed},
                                                                     {"changed time", retimed}}) {
    const auto file = write_file(joined(file_lines));
    try {
      import_log(target.url(), file);
      ADD_FAILURE() << what << ": imported";
    } catch (const annals::CorruptionError& e) {
      EXPECT_NE(std::string(e.what()).find("line "), std::string::npos) << what << ": " << e.what();
    }
    EXPECT_TRUE(target.rows().empty()) << what;
    std::filesystem::remove(file);
  }
}

TEST(LogTransferTest, ALineThatIsNotAnExportedEventIsInvalidInputNamingTheLine) {
  Database source;
  Database target;
  fill(source.url());
  auto lines = lines_of(exported(source.url(), 6));
  // A recorded_at no clock holds (year 1013, found by fuzz_log_line: it overflowed the
  // conversion to a time point) is refused like any other bad value.
  const auto at = lines[0].find("\"recorded_at\":\"") + 15;
  auto year_1013 = lines[0];
  year_1013.replace(at, 4, "1013");
  for (const std::string& bad : {std::string("not json"), std::string(R"({"stream":"x"})"),
                                 lines[0].substr(0, lines[0].size() - 2),
                                 std::string(600, '[') + std::string(600, ']'), year_1013}) {
    auto broken = lines;
    broken.insert(broken.begin() + 2, bad);
    const auto file = write_file(joined(broken));
    try {
      import_log(target.url(), file);
      ADD_FAILURE() << "imported a file with the line " << bad.substr(0, 40);
    } catch (const annals::InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(target.rows().empty());
    std::filesystem::remove(file);
  }
}

// A category export, and an export after a position that continues streams the target holds.
TEST(LogTransferTest, PartialExportsContinueStoredStreams) {
  Database source;
  Database target;
  fill(source.url());
  const auto all = lines_of(exported(source.url(), 6));
  const auto orders = lines_of(exported(source.url(), 1, {.category = "order"}));
  ASSERT_EQ(orders.size(), 1U);
  EXPECT_NE(orders[0].find("\"order-7\""), std::string::npos);

  const auto position =
      annals::Position::parse(nlohmann::json::parse(all[2]).at("position").get<std::string>());
  const auto tail = lines_of(exported(source.url(), 3, {.after = position}));
  ASSERT_EQ(tail.size(), 3U);

  // Into an empty store the tail does not chain to anything: refused.
  const auto tail_file = write_file(joined(tail));
  EXPECT_THROW(import_log(target.url(), tail_file), annals::CorruptionError);
  EXPECT_TRUE(target.rows().empty());
  // After the head, it continues the stored streams.
  const auto head_file = write_file(joined({all[0], all[1], all[2]}));
  EXPECT_EQ(import_log(target.url(), head_file).written, 3);
  EXPECT_EQ(import_log(target.url(), tail_file).written, 3);
  EXPECT_EQ(target.rows(), source.rows());
  EXPECT_TRUE(annals::postgres::verify(target.url()).findings.empty());
  std::filesystem::remove(tail_file);
  std::filesystem::remove(head_file);
}

// A file of which the store holds some events: the one-COPY path is refused by the unique index
// at the first stored event (here not the first line), rolled back to its savepoint, and the
// batch path writes exactly the events that are missing.
TEST(LogTransferTest, AFilePartlyStoredWritesOnlyWhatIsMissing) {
  Database source;
  Database target;
  fill(source.url());
  const auto all = lines_of(exported(source.url(), 6));
  const auto orders = lines_of(exported(source.url(), 1, {.category = "order"}));
  ASSERT_EQ(orders.size(), 1U);
  ASSERT_NE(all.front(), orders.front());  // the stored event is not the file's first
  const auto orders_file = write_file(joined(orders));
  ASSERT_EQ(import_log(target.url(), orders_file).written, 1);
  const auto file = write_file(joined(all));
  const auto summary = import_log(target.url(), file);
  EXPECT_EQ(summary.events, 6);
  EXPECT_EQ(summary.written, 5);
  EXPECT_EQ(summary.already_stored, 1);
  EXPECT_EQ(target.rows(), source.rows());
  EXPECT_TRUE(annals::postgres::verify(target.url()).findings.empty());
  std::filesystem::remove(orders_file);
  std::filesystem::remove(file);
}

// A stream version the store holds as another event: refused, nothing written.
TEST(LogTransferTest, AStreamVersionTakenByAnotherEventIsRefused) {
  Database source;
  Database target;
  fill(source.url());
  auto store = annals::postgres::make_postgres_event_store({.connection_string = target.url()});
  store->append(StreamId("order-7"), ExpectedVersion::no_stream(), {NewEvent{.type = "Other"}});
  const auto file = write_file(exported(source.url(), 6));
  EXPECT_THROW(import_log(target.url(), file), annals::IdempotencyError);
  EXPECT_EQ(target.rows().size(), 1U);
  std::filesystem::remove(file);
}

// The CLI: `annals export --output`, `annals import --json`, exit 6 for a changed file and 2 for
// a line that is not an event.
TEST(LogTransferTest, TheCliExportsAndImports) {
  using annals::testing::run_process;
  Database source;
  Database target;
  fill(source.url());
  static_cast<void>(exported(source.url(), 6));  // settled
  const auto file = std::filesystem::temp_directory_path() / ("annals-cli-export-" + random_hex(8));
  const auto out =
      run_process({ANNALS_CLI_PATH, "export", "--output", file.string(), "--db", source.url()});
  ASSERT_EQ(out.exit_code, 0) << out;
  EXPECT_NE(out.err.find("exported 6 events"), std::string::npos) << out;

  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto lines = lines_of(text);
  auto changed = lines;
  changed[4].replace(changed[4].find("\"amount\":1"), 10, "\"amount\":7");
  const auto changed_file = write_file(joined(changed));
  const auto refused = run_process({ANNALS_CLI_PATH, "import", changed_file, "--db", target.url()});
  EXPECT_EQ(refused.exit_code, 6) << refused;
  EXPECT_NE(refused.err.find("line 5"), std::string::npos) << refused;
  auto garbage = lines;
  garbage.insert(garbage.begin(), "{\"stream\": 1}");
  const auto garbage_file = write_file(joined(garbage));
  const auto bad = run_process({ANNALS_CLI_PATH, "import", garbage_file, "--db", target.url()});
  EXPECT_EQ(bad.exit_code, 2) << bad;
  EXPECT_TRUE(target.rows().empty());

  const auto imported =
      run_process({ANNALS_CLI_PATH, "import", file.string(), "--json", "--db", target.url()});
  ASSERT_EQ(imported.exit_code, 0) << imported;
  const auto summary = nlohmann::json::parse(imported.out);
  EXPECT_EQ(summary.at("written").get<int>(), 6);
  EXPECT_EQ(summary.at("already_stored").get<int>(), 0);
  EXPECT_EQ(summary.at("streams").get<int>(), 2);
  EXPECT_EQ(target.rows(), source.rows());
  for (const auto& f : {file.string(), changed_file, garbage_file}) std::filesystem::remove(f);
}

}  // namespace
