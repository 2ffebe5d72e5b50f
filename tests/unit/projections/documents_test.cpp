// The document read side in memory: the DocumentContract suite (annals::testkit_projections)
// on the in-memory event and projection stores, the same suite that runs on PostgreSQL
// (tests/integration/projections/documents_postgres_test.cpp), plus the jsonb rules the
// in-memory reader mirrors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/detail/document_query.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/testkit/document_contract.hpp"
#include "app_domain.hpp"

namespace {

struct InMemoryDocuments {
  static annals::testkit::DocumentContractEnv make() {
    annals::testkit::DocumentContractEnv env;
    env.events = annals::make_in_memory_event_store();
    env.store = annals::projections::make_in_memory_projection_store();
    env.reader = annals::projections::make_in_memory_document_reader(*env.store);
    return env;
  }
};

using annals::projections::detail::compare_jsonb;
using annals::projections::detail::jsonb_contains;
using nlohmann::json;

TEST(JsonbRulesTest, TypesOrderAsInPostgres) {
  // null < string < number < boolean < array < object
  const std::vector<json> ordered = {
      nullptr, "z", 1, 2.5, false, true, json::array({1}), json::object({{"a", 1}})};
  for (std::size_t i = 0; i + 1 < ordered.size(); ++i) {
    EXPECT_LT(compare_jsonb(ordered[i], ordered[i + 1]), 0)
        << ordered[i] << " < " << ordered[i + 1];
    EXPECT_GT(compare_jsonb(ordered[i + 1], ordered[i]), 0);
  }
  EXPECT_EQ(compare_jsonb(1, 1.0), 0);
  EXPECT_LT(compare_jsonb(json::array({9}), json::array({1, 1})), 0) << "shorter array first";
}

TEST(JsonbRulesTest, ContainmentFollowsPostgres) {
  EXPECT_TRUE(jsonb_contains(json::array({"a", "b"}), "a"));
  EXPECT_TRUE(jsonb_contains(json::array({"a", "b"}), json::array({"b"})));
  EXPECT_FALSE(jsonb_contains(json::array({"a"}), json::array({"a", "c"})));
  EXPECT_TRUE(jsonb_contains(json{{"a", 1}, {"b", 2}}, json{{"a", 1}}));
  EXPECT_FALSE(jsonb_contains(json{{"a", 1}}, json{{"a", 2}}));
  EXPECT_TRUE(jsonb_contains("x", "x"));
  EXPECT_FALSE(jsonb_contains(json::array({json::array({"a"})}), "a"));
}

TEST(AppTest, AnAppNeedsEveryStoreAndStopsOnlyWhatItStarted) {
  EXPECT_THROW(annals::App(annals::AppParts{}), annals::InvalidArgumentError);
  auto app = annals::open_in_memory();
  app.reset();  // never started: nothing to stop
  SUCCEED();
}

TEST(AppTest, InMemoryAppRunsAServiceFromCommandToTypedQuery) {
  auto app = annals::open_in_memory();
  app_domain::run_tally(*app, "mem");
}

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, DocumentContract, InMemoryDocuments);
