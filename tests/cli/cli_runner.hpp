// Runs the real `annals` binary for the CLI tests against PostgreSQL (cli_test.cpp,
// cli_audit_test.cpp): the result with its parsers, a test database per process, and the waits
// for settled events those tests share.
#pragma once

#include <chrono>
#include <cstdint>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/types.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace annals::testing::cli {

using Json = nlohmann::ordered_json;

// A finished `annals` run, with the parsers these tests use.
struct Result : annals::testing::ProcessResult {
  explicit Result(annals::testing::ProcessResult run)
      : annals::testing::ProcessResult(std::move(run)) {}

  [[nodiscard]] std::vector<std::string> out_lines() const { return lines(out); }
  [[nodiscard]] std::vector<std::string> err_lines() const { return lines(err); }
  [[nodiscard]] std::vector<Json> out_json() const {
    std::vector<Json> parsed;
    for (const auto& line : out_lines()) parsed.push_back(Json::parse(line));
    return parsed;
  }
  // The one-line JSON error a conflict leaves as the last line of stderr.
  [[nodiscard]] Json err_json() const { return Json::parse(err_lines().back()); }

 private:
  static std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
};

enum class DatabaseEnv { kUnset, kTestDatabase };

// Runs the annals binary with `args`, feeding `input` on stdin. ANNALS_DATABASE_URL is removed
// from the child's environment unless `env` asks for the test database.
inline Result run_annals(const std::vector<std::string>& args, const std::string& input = "",
                         DatabaseEnv env = DatabaseEnv::kUnset) {
  std::vector<std::string> argv{ANNALS_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  auto environment = annals::testing::environment_without("ANNALS_DATABASE_URL");
  if (env == DatabaseEnv::kTestDatabase) {
    environment.push_back("ANNALS_DATABASE_URL=" + annals::testing::test_database_url());
  }
  return Result(annals::testing::run_process(argv, input, environment));
}

// Runs annals against this process's test database, given with --db.
inline Result annals_db(std::vector<std::string> args, const std::string& input = "") {
  args.insert(args.begin(), {"--db", annals::testing::test_database_url()});
  return run_annals(args, input);
}

inline std::vector<std::string> keys(const Json& object) {
  std::vector<std::string> out;
  for (const auto& item : object.items()) out.push_back(item.key());
  return out;
}

// JSON objects compared without regard to key order (stored JSONB has its own key order).
inline nlohmann::json unordered(const Json& j) { return nlohmann::json::parse(j.dump()); }

inline std::vector<std::int64_t> versions(const Result& r) {
  std::vector<std::int64_t> out;
  for (const auto& j : r.out_json()) out.push_back(j.at("version").get<std::int64_t>());
  return out;
}

// Appends and returns the parsed result line, failing the test on a non-zero exit.
inline Json append_ok(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> full{"append"};
  full.insert(full.end(), args.begin(), args.end());
  const auto r = annals_db(full, input);
  EXPECT_EQ(r.exit_code, 0) << r;
  const auto lines = r.out_json();
  EXPECT_EQ(lines.size(), 1u) << r;
  return lines.empty() ? Json() : lines.front();
}

// A stream id (and so a category) no other test of this process uses: under ctest each test
// has its own database, but running the binary by hand shares one.
inline std::string unique(const std::string& prefix) {
  return prefix + annals::testing::unique_stream("").substr(1);
}

inline std::string new_event_id() { return annals::EventId::generate().to_string(); }

// The position of the last event in the log ("0" when empty): tests read after it.
inline std::string log_end();

inline void expect_usage_error(const Result& r) {
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_EQ(r.err.rfind("annals: ", 0), 0u) << r;
}

// The URL of a database that exists but is not migrated; dropped by the caller.
inline std::string create_unmigrated_database(const std::string& name) {
  const auto& server = annals::testing::server_url();
  pqxx::connection c(server);
  pqxx::nontransaction tx(c);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  // Same server and credentials, another database name (URI or keyword/value form).
  static const std::regex kUri(R"(^(postgres(?:ql)?://[^/?]*)(/[^?]*)?(\?.*)?$)");
  std::smatch m;
  if (std::regex_match(server, m, kUri)) return m[1].str() + "/" + name + m[3].str();
  return server + " dbname=" + name;
}

inline std::string log_end() {
  const auto r = annals_db({"read-all"});
  EXPECT_EQ(r.exit_code, 0) << r;
  const auto events = r.out_json();
  return events.empty() ? "0" : events.back()["position"].get<std::string>();
}

// `read-all` prints only settled events: while a transaction runs anywhere in the cluster
// (another test process's, under ctest -j), later commits are held back until it ends. Waits,
// bounded, until every event up to the `position` of an append's result line is readable.
inline void wait_until_readable(const Json& appended) {
  const auto target = annals::Position::parse(appended.at("position").get<std::string>());
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url(), .pool_size = 1});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (store->head_position() < target) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "events up to " << target.to_string() << " did not settle";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

inline void drop_database(const std::string& name) {
  pqxx::connection c(annals::testing::server_url());
  pqxx::nontransaction tx(c);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
}

}  // namespace annals::testing::cli
