// `read` and `read-all` of a CLI built with the user's EventRegistry (annals::cli::run with a
// registry, docs/cli.md "A CLI with your registry"): events print upcast to their current
// schema, renamed types are found under their old names by --type, splits print one line per
// part, and an event the registry cannot read is printed as stored with "upcast_error".
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/framework/event_registry.hpp"
#include "commands.hpp"
#include "wallet.hpp"

namespace annals::cli {
namespace {

using ::testing::ElementsAre;

std::vector<nlohmann::ordered_json> json_lines(const std::string& text) {
  std::vector<nlohmann::ordered_json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::ordered_json::parse(line));
  return lines;
}

std::vector<std::string> keys(const nlohmann::ordered_json& object) {
  std::vector<std::string> out;
  for (const auto& item : object.items()) out.push_back(item.key());
  return out;
}

class RegistryCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    wallet::register_wallet(registry_);
    store_->append(StreamId("wallet-1"), ExpectedVersion::any(),
                   {wallet::raw("FundsAdded", 1, {{"amount", 2}}),
                    wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "ada"}, {"initial", 3}}),
                    wallet::raw("WalletCredited", 3, {{"amount_cents", 4}, {"currency", "EUR"}}),
                    wallet::raw("Mystery", 1, {{"x", 1}})});
  }

  EventRegistry registry_;
  std::unique_ptr<EventStore> store_ = make_in_memory_event_store();
};

TEST_F(RegistryCommandsTest, ReadPrintsUpcastEventsAndWhatTheyWereStoredAs) {
  ReadArgs args;
  args.stream = "wallet-1";
  std::ostringstream out;
  EXPECT_EQ(read(*store_, args, out, &registry_), 1U);  // Mystery cannot be upcast
  const auto lines = json_lines(out.str());
  ASSERT_EQ(lines.size(), 5U);
  EXPECT_THAT(keys(lines[0]), ElementsAre("stream", "version", "position", "event_id", "type",
                                          "schema_version", "data", "metadata", "recorded_at",
                                          "stored_type", "stored_schema_version"));
  EXPECT_EQ(lines[0]["type"], "WalletCredited");
  EXPECT_EQ(lines[0]["schema_version"], 3);
  EXPECT_EQ(lines[0]["data"], (nlohmann::ordered_json{{"amount_cents", 200}, {"currency", "EUR"}}));
  EXPECT_EQ(lines[0]["stored_type"], "FundsAdded");
  EXPECT_EQ(lines[0]["stored_schema_version"], 1);
  // The split: two lines for version 2, parts 0 and 1.
  EXPECT_EQ(lines[1]["version"], 2);
  EXPECT_EQ(lines[1]["type"], "WalletCreated");
  EXPECT_EQ(lines[1]["part"], 0);
  EXPECT_EQ(lines[1]["parts"], 2);
  EXPECT_EQ(lines[2]["version"], 2);
  EXPECT_EQ(lines[2]["type"], "WalletCredited");
  EXPECT_EQ(lines[2]["part"], 1);
  // Current events print exactly as without a registry.
  EXPECT_THAT(keys(lines[3]), ElementsAre("stream", "version", "position", "event_id", "type",
                                          "schema_version", "data", "metadata", "recorded_at"));
  EXPECT_EQ(lines[4]["type"], "Mystery");
  EXPECT_THAT(lines[4]["upcast_error"].get<std::string>(), ::testing::HasSubstr("Mystery"));
}

TEST_F(RegistryCommandsTest, ReadAllTypeFindsRenamedTypesUnderTheirOldNames) {
  ReadAllArgs args;
  args.output.types = {"WalletCredited"};
  std::ostringstream out;
  EXPECT_EQ(read_all(*store_, args, out, &registry_), 0U);
  std::vector<std::string> seen;
  for (const auto& line : json_lines(out.str())) {
    seen.push_back(line["type"].get<std::string>() + ":" +
                   std::to_string(line["data"]["amount_cents"].get<int>()));
  }
  // The WalletCreated part of the split is not printed: only the asked-for type.
  EXPECT_THAT(seen, ElementsAre("WalletCredited:200", "WalletCredited:300", "WalletCredited:4"));
}

TEST_F(RegistryCommandsTest, ReadAllTypeOfAnOldNamePrintsItsEventsUpcast) {
  ReadAllArgs args;
  args.output.types = {"FundsAdded", "WalletOpenedWithFunds"};
  std::ostringstream out;
  EXPECT_EQ(read_all(*store_, args, out, &registry_), 0U);
  std::vector<std::string> seen;
  for (const auto& line : json_lines(out.str())) {
    seen.push_back(line["stored_type"].get<std::string>() + "->" + line["type"].get<std::string>());
  }
  // Events stored under an asked-for name print every part.
  EXPECT_THAT(seen,
              ElementsAre("FundsAdded->WalletCredited", "WalletOpenedWithFunds->WalletCreated",
                          "WalletOpenedWithFunds->WalletCredited"));
}

TEST_F(RegistryCommandsTest, WithoutARegistryNothingChanges) {
  ReadAllArgs args;
  args.output.types = {"WalletCredited"};
  std::ostringstream out;
  EXPECT_EQ(read_all(*store_, args, out), 0U);
  const auto lines = json_lines(out.str());
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0]["data"]["amount_cents"], 4);
}

}  // namespace
}  // namespace annals::cli
