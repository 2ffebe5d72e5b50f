// The `shop` front as a user runs it: a whole session in one --memory process, and one command
// per process on PostgreSQL (each process runs the process manager and read models while its
// command settles, continuing from the checkpoints the previous one left).
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "test_database.hpp"

namespace {

struct Run {
  int exit_code = -1;
  std::string out;
};

// Runs the shop binary with `args` (shell words) and `input` on stdin; stderr is discarded.
Run shop(const std::string& args, const std::string& input = "") {
  // ctest runs each test in its own process, possibly at once: one file per process and call.
  static int calls = 0;
  const std::string stdin_path = ::testing::TempDir() + "shop_cli_test_stdin_" +
                                 std::to_string(getpid()) + "_" + std::to_string(++calls) + ".txt";
  std::ofstream(stdin_path) << input;
  const std::string command =
      std::string(ANNALS_SHOP_BINARY) + " " + args + " < " + stdin_path + " 2>/dev/null";
  Run run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (const auto n = fread(buffer.data(), 1, buffer.size(), pipe))
    run.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::remove(stdin_path.c_str());
  return run;
}

TEST(ShopCliTest, RunsAWholeSessionInMemory) {
  const auto run = shop("--memory",
                        "receive apple 10\n"
                        "receive pear 5\n"
                        "# a comment\n"
                        "place o1 apple:3 pear:5\n"
                        "place o2 apple:3 pear:1\n"
                        "stock\n");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.out,
            R"({"available":10,"reserved":0,"sku":"apple"}
{"available":5,"reserved":0,"sku":"pear"}
{"lines":[{"quantity":3,"sku":"apple"},{"quantity":5,"sku":"pear"}],"order_id":"o1","reason":"","reserved_lines":2,"status":"confirmed","version":4}
{"lines":[{"quantity":3,"sku":"apple"},{"quantity":1,"sku":"pear"}],"order_id":"o2","reason":"insufficient stock of pear: requested 1, available 0","reserved_lines":1,"status":"rejected","version":4}
{"available":7,"reserved":3,"sku":"apple"}
{"available":0,"reserved":5,"sku":"pear"}
)");
}

TEST(ShopCliTest, ExitCodesTellRefusalsFromBadUsage) {
  EXPECT_EQ(shop("--memory", "place o1 apple:0\n").exit_code, 1);  // a domain error
  EXPECT_EQ(shop("--memory", "order nobody\n").exit_code, 1);
  EXPECT_EQ(shop("--memory", "place o1 apple\n").exit_code, 2);  // not SKU:QTY
  EXPECT_EQ(shop("--memory", "receive apple many\n").exit_code, 2);
  EXPECT_EQ(shop("--memory", "frobnicate\n").exit_code, 2);
  EXPECT_EQ(shop("--memory order \"bad/id\"").exit_code, 1);
}

TEST(ShopCliTest, OneCommandPerProcessOnPostgres) {
  const std::string db = "--db '" + annals::testing::test_database_url() + "' ";
  EXPECT_EQ(shop(db + "receive kiwi 4").out, "{\"available\":4,\"reserved\":0,\"sku\":\"kiwi\"}\n");
  const auto placed = shop(db + "place k1 kiwi:4");
  EXPECT_EQ(placed.exit_code, 0);
  EXPECT_EQ(
      placed.out,
      R"({"lines":[{"quantity":4,"sku":"kiwi"}],"order_id":"k1","reason":"","reserved_lines":1,"status":"confirmed","version":3})"
      "\n");
  const auto refused = shop(db + "place k2 kiwi:1");
  EXPECT_EQ(
      refused.out,
      R"({"lines":[{"quantity":1,"sku":"kiwi"}],"order_id":"k2","reason":"insufficient stock of kiwi: requested 1, available 0","reserved_lines":0,"status":"rejected","version":3})"
      "\n");
  EXPECT_EQ(shop(db + "stock kiwi").out, "{\"available\":0,\"reserved\":4,\"sku\":\"kiwi\"}\n");
}

}  // namespace
