#include "test_database.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <regex>

#include <pqxx/pqxx>

#include "annals/postgres/postgres_event_store.hpp"

namespace annals::testing {
namespace {

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "\n*** annals tests need PostgreSQL: " << why
            << "\n*** Run scripts/test, or set ANNALS_DATABASE_URL=postgresql://user@host:port/db"
               " (scripts/pg start && export ANNALS_DATABASE_URL=$(scripts/pg url)).\n";
  std::exit(2);
}

// Replaces the database name of a URI or keyword/value connection string.
std::string with_database(const std::string& url, const std::string& db) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0) {
    static const std::regex kUri(R"(^(postgres(?:ql)?://[^/?]*)(/[^?]*)?(\?.*)?$)");
    std::smatch m;
    if (!std::regex_match(url, m, kUri)) fail("cannot parse ANNALS_DATABASE_URL " + url);
    return m[1].str() + "/" + db + m[3].str();
  }
  return url + " dbname=" + db;
}

struct Database {
  std::string admin_url;
  std::string name;
  std::string url;
};

Database* g_database = nullptr;

void drop_database() {
  if (g_database == nullptr) return;
  try {
    pqxx::connection c(g_database->admin_url);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(g_database->name) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::cerr << "warning: could not drop test database " << g_database->name << ": " << e.what()
              << "\n";
  }
}

}  // namespace

std::string random_hex(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

const std::string& server_url() {
  static const std::string url = [] {
    const char* env = std::getenv("ANNALS_DATABASE_URL");
    if (env == nullptr || *env == '\0') fail("ANNALS_DATABASE_URL is not set");
    return std::string(env);
  }();
  return url;
}

const std::string& test_database_url() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto* db = new Database();  // lives until exit; dropped by the atexit hook
    db->admin_url = server_url();
    db->name = "annals_test_" + std::to_string(::getpid()) + "_" + random_hex(8);
    try {
      pqxx::connection c(db->admin_url);
      pqxx::nontransaction tx(c);
      tx.exec("CREATE DATABASE " + tx.quote_name(db->name));
    } catch (const std::exception& e) {
      fail(std::string("cannot create a test database: ") + e.what());
    }
    db->url = with_database(db->admin_url, db->name);
    g_database = db;
    std::atexit(drop_database);
    annals::postgres::migrate(db->url);
  });
  return g_database->url;
}

ScratchDatabase::ScratchDatabase(const std::string& prefix, bool migrated)
    : name_(prefix + "_" + random_hex(10)), url_(with_database(server_url(), name_)) {
  {
    pqxx::connection c(server_url());
    pqxx::nontransaction tx(c);
    tx.exec("CREATE DATABASE " + tx.quote_name(name_));
  }
  if (migrated) annals::postgres::migrate(url_);
}

ScratchDatabase::~ScratchDatabase() {
  try {
    pqxx::connection c(server_url());
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::cerr << "warning: could not drop test database " << name_ << ": " << e.what() << "\n";
  }
}

std::string unique_stream(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "-" + random_hex(12) + std::to_string(counter.fetch_add(1));
}

}  // namespace annals::testing
