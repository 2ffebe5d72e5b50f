// Inline projections as the least-privilege writer role (docs/security.md): an inline append,
// its read-model writes and the record of its transaction need nothing the writer lacks, and a
// runner skips the inline-applied events as the writer too.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/inline_projections.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "read_model_support.hpp"
#include "test_roles.hpp"

namespace annals::projections {
namespace {

using testing::Admin;
using testing::LambdaReadModel;
using testing::unique_name;

TEST(InlineWriterRoleTest, InlineAppendsAndTheRunnerWorkAsTheWriter) {
  const auto& url = annals::testing::test_roles().writer_url;
  auto events = postgres::make_postgres_event_store({.connection_string = url});
  auto store = make_postgres_projection_store({.connection_string = url, .pool_size = 2});
  const auto table = unique_name("inline_writer");
  const auto category = unique_name("w");
  auto counts =
      std::make_shared<LambdaReadModel>(table, [table](const RecordedEvent& e, ReadModel& db) {
        db.increment(table, {{"stream_id", e.stream_id.value()}}, "n", 1);
      });
  counts->migrations_ = {
      {"0001_create", "CREATE TABLE " + table + " (stream_id text PRIMARY KEY, n bigint)"}};
  counts->tables_ = {table};
  counts->filter_ = {.category = category, .event_types = {}};
  auto inline_store = make_inline_projections_store(*events, *store, {counts},
                                                    {.connection_string = url, .pool_size = 2});
  const StreamId stream(category + "-1");
  inline_store->append(stream, ExpectedVersion::no_stream(),
                       {NewEvent{.type = "Ticked"}, NewEvent{.type = "Ticked"}});
  Admin admin;
  EXPECT_EQ(admin.value("SELECT n FROM " + table), "2");

  const auto last = events->append(stream, ExpectedVersion::exact(2), {NewEvent{.type = "Ticked"}});
  ProjectionRunner runner(*events, *store, {.owner = "inline-writer"});
  runner.add(counts);
  runner.start();
  ASSERT_TRUE(runner.wait_for(counts->name(), last.position, std::chrono::minutes(1)));
  ASSERT_TRUE(wait_for_checkpoint(*store, counts->name(), last.position, std::chrono::minutes(1)));
  runner.stop();
  EXPECT_EQ(admin.value("SELECT n FROM " + table), "3");
  EXPECT_EQ(admin.value("SELECT inline_applied::text FROM annals.projections WHERE name = '" +
                        table + "'"),
            "{}");
}

}  // namespace
}  // namespace annals::projections
