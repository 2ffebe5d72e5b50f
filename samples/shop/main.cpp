// shop: the shop sample's command-line front.
//
//   shop [--db URL | --memory] [--timeout-ms N] COMMAND [ARGS...]
//
//   receive SKU QTY              stock arrives; prints the SKU's stock level
//   place ORDER SKU:QTY...       places an order, waits until the process manager has
//                                confirmed or rejected it, prints the order's summary
//   reject ORDER [REASON]        rejects (cancels) a placed order; its stock is released
//   order ORDER                  prints the order's summary
//   stock [SKU]                  prints one SKU's stock level, or every SKU's
//   run                          runs the process manager and the read models until SIGINT or
//                                SIGTERM (other shop processes then pass --no-projections)
//   (no command)                 reads commands from standard input, one per line: with
//                                --memory, a whole session in one process
//
// Output: one JSON object per line on stdout; logs on stderr. Errors: {"error": "..."} on stderr
// and exit code 1 (a refused command: a domain error), 2 (bad usage), 3 (infrastructure).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "inventory.hpp"
#include "order.hpp"
#include "shop_app.hpp"
#include "views.hpp"

namespace {

constexpr int kUsage = 2;

/// Bad arguments of one command.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::int64_t parse_quantity(const std::string& text) {
  std::size_t used = 0;
  std::int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw UsageError("not a quantity: \"" + text + "\"");
  return value;
}

void require_id(const std::string& what, const std::string& id) {
  if (!shop::is_valid_id(id)) {
    throw UsageError("invalid " + what + " \"" + id + "\": 1 to " +
                     std::to_string(shop::kMaxIdBytes) + " characters out of [A-Za-z0-9._~-]");
  }
}

void print(const nlohmann::json& value) { std::cout << value.dump() << std::endl; }

class Front {
 public:
  Front(shop::ShopApp& app, std::chrono::milliseconds timeout) : app_(app), timeout_(timeout) {}

  // Runs one command line (already split into words).
  void run(const std::vector<std::string>& words) {
    if (words.empty()) throw UsageError("no command");
    const std::string& command = words[0];
    const std::vector<std::string> args(words.begin() + 1, words.end());
    if (command == "receive") {
      if (args.size() != 2) throw UsageError("usage: receive SKU QTY");
      require_id("SKU", args[0]);
      app_.bus().send(shop::ReceiveStock{args[0], parse_quantity(args[1])});
      settle();
      print_stock(args[0]);
    } else if (command == "place") {
      if (args.size() < 2) throw UsageError("usage: place ORDER SKU:QTY...");
      require_id("order id", args[0]);
      shop::PlaceOrder place{args[0], {}};
      for (std::size_t i = 1; i < args.size(); ++i) {
        const auto colon = args[i].rfind(':');
        if (colon == std::string::npos) throw UsageError("not SKU:QTY: \"" + args[i] + "\"");
        place.lines.push_back(
            {args[i].substr(0, colon), parse_quantity(args[i].substr(colon + 1))});
      }
      app_.bus().send(place);
      settle();
      print_order(args[0]);
    } else if (command == "reject") {
      if (args.empty() || args.size() > 2) throw UsageError("usage: reject ORDER [REASON]");
      require_id("order id", args[0]);
      app_.bus().send(shop::RejectOrder{args[0], args.size() == 2 ? args[1] : "rejected"});
      settle();
      print_order(args[0]);
    } else if (command == "order") {
      if (args.size() != 1) throw UsageError("usage: order ORDER");
      print_order(args[0]);
    } else if (command == "stock") {
      if (args.size() > 1) throw UsageError("usage: stock [SKU]");
      if (args.empty()) {
        for (const auto& level : app_.queries().stock_levels()) print(level);
      } else {
        print_stock(args[0]);
      }
    } else {
      throw UsageError("unknown command \"" + command + "\"");
    }
  }

 private:
  void settle() {
    if (!app_.settle(timeout_)) {
      throw annals::UnavailableError(
          "the process manager and read models did not catch up within " +
          std::to_string(timeout_.count()) + " ms");
    }
  }
  void print_order(const std::string& order_id) {
    const auto summary = app_.queries().order(order_id);
    if (!summary) throw shop::OrderNotFound(order_id);
    print(*summary);
  }
  void print_stock(const std::string& sku) {
    const auto level = app_.queries().stock(sku);
    print(level ? nlohmann::json(*level) : nlohmann::json(shop::StockLevel{sku, 0, 0}));
  }

  shop::ShopApp& app_;
  std::chrono::milliseconds timeout_;
};

int report(const std::exception& error, int code) {
  std::cerr << nlohmann::json{{"error", error.what()}}.dump() << std::endl;
  return code;
}

// Runs one command; returns its exit code.
int run_one(Front& front, const std::vector<std::string>& words) {
  try {
    front.run(words);
    return 0;
  } catch (const UsageError& e) {
    return report(e, kUsage);
  } catch (const annals::DomainError& e) {
    return report(e, 1);
  } catch (const annals::InvalidArgumentError& e) {
    return report(e, kUsage);
  } catch (const std::exception& e) {
    return report(e, 3);
  }
}

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"shop: the annals shop sample (orders, inventory, an order process manager)"};
  std::string db;
  bool memory = false;
  bool no_projections = false;
  int timeout_ms = 10'000;
  std::vector<std::string> words;
  cli.add_option("--db", db, "PostgreSQL URL (default: $ANNALS_DATABASE_URL)");
  cli.add_flag("--memory", memory, "in-memory stores and read models (nothing is kept)");
  cli.add_flag("--no-projections", no_projections,
               "do not run the process manager and read models here (a `shop run` does)");
  cli.add_option("--timeout-ms", timeout_ms, "longest wait for the process manager, per command")
      ->check(CLI::PositiveNumber);
  bool verbose = false;
  cli.add_flag("-v,--verbose", verbose, "log the runner's lifecycle (stderr)");
  cli.add_option("command", words, "receive | place | reject | order | stock | run");
  cli.positionals_at_end();
  CLI11_PARSE(cli, argc, argv);

  // Logs go to stderr, so that stdout carries only the JSON answers; warnings and errors only,
  // unless --verbose (or `run`, a service).
  const bool serve_mode = !words.empty() && words[0] == "run";
  auto log = spdlog::stderr_color_mt("annals");
  log->set_level(verbose || serve_mode ? spdlog::level::info : spdlog::level::warn);
  spdlog::set_default_logger(log);

  if (db.empty()) {
    if (const char* env = std::getenv("ANNALS_DATABASE_URL")) db = env;
  }
  try {
    const bool serve = serve_mode;
    shop::ShopApp app(
        {.database_url = db, .memory = memory, .run_projections = !no_projections || serve});
    if (serve) {
      if (words.size() != 1) throw UsageError("usage: run");
      app.run_until_signal();
      return 0;
    }
    app.start();
    Front front(app, std::chrono::milliseconds(timeout_ms));
    if (!words.empty()) return run_one(front, words);
    int code = 0;
    for (std::string line; std::getline(std::cin, line);) {
      const auto line_words = split_words(line);
      if (line_words.empty() || line_words[0].starts_with('#')) continue;
      if (const int result = run_one(front, line_words); result != 0) code = result;
    }
    return code;
  } catch (const UsageError& e) {
    return report(e, kUsage);
  } catch (const annals::InvalidArgumentError& e) {
    return report(e, kUsage);
  } catch (const std::exception& e) {
    return report(e, 3);
  }
}
