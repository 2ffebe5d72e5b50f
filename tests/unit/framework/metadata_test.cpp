// Unit tests of event metadata and deterministic event ids.
#include "annals/framework/metadata.hpp"

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/testkit/printers.hpp"

namespace {

using annals::CommandContext;
using annals::EventId;

TEST(DeriveEventIdTest, IsANameBasedUuidThatNeverChanges) {
  // Pinned: ids of stored events derive from this; changing the namespace or the name format
  // would make every re-sent command look new. (Python: uuid5(UUID("6b1f4e52-..."),
  // "order-1/0").)
  EXPECT_EQ(annals::derive_event_id("order-1", 0),
            EventId::parse("1ff3308a-dbbe-57d4-b8d8-8999c468dde7"));
  EXPECT_EQ(annals::derive_event_id("order-1", 1),
            EventId::parse("e212bf5d-4776-580f-b175-c25c9998b01c"));
  const auto id = annals::derive_event_id("order-1", 0);
  EXPECT_EQ(id.uuid().version(), boost::uuids::uuid::version_name_based_sha1);
  EXPECT_EQ(id.uuid().variant(), boost::uuids::uuid::variant_rfc_4122);
}

TEST(DeriveEventIdTest, DiffersByCommandAndIndex) {
  EXPECT_EQ(annals::derive_event_id("a", 3), annals::derive_event_id("a", 3));
  EXPECT_NE(annals::derive_event_id("a", 3), annals::derive_event_id("a", 4));
  EXPECT_NE(annals::derive_event_id("a", 3), annals::derive_event_id("b", 3));
  EXPECT_NE(annals::derive_event_id("a/1", 0), annals::derive_event_id("a", 10));
  EXPECT_THROW((void)annals::derive_event_id("", 0), annals::InvalidArgumentError);
}

TEST(CommandMetadataTest, ResolvesDefaultsFromTheCommandId) {
  const auto meta = annals::command_metadata({.command_id = "c1"});
  EXPECT_EQ(meta, nlohmann::json(
                      {{"command_id", "c1"}, {"correlation_id", "c1"}, {"causation_id", "c1"}}));
}

TEST(CommandMetadataTest, KeepsExplicitIdsActorAndExtraKeys) {
  const auto meta = annals::command_metadata({.command_id = "c1",
                                              .correlation_id = "flow-9",
                                              .causation_id = "event-3",
                                              .actor = "svc-billing",
                                              .extra = {{"traceparent", "00-ab-cd-01"}}});
  EXPECT_EQ(meta, nlohmann::json({{"command_id", "c1"},
                                  {"correlation_id", "flow-9"},
                                  {"causation_id", "event-3"},
                                  {"actor", "svc-billing"},
                                  {"traceparent", "00-ab-cd-01"}}));
}

TEST(CommandMetadataTest, RefusesReservedKeysNonObjectsAndMissingCommandIds) {
  EXPECT_THROW((void)annals::command_metadata({.command_id = "c", .extra = {{"actor", "x"}}}),
               annals::InvalidArgumentError);
  EXPECT_THROW((void)annals::command_metadata({.command_id = "c", .extra = 5}),
               annals::InvalidArgumentError);
  EXPECT_THROW((void)annals::command_metadata({}), annals::InvalidArgumentError);
}

TEST(EventMetadataTest, SplitsReservedKeysFromFreeFormOnes) {
  annals::RecordedEvent event{
      .stream_id = annals::StreamId("s-1"),
      .version = 1,
      .position = {},
      .id = {},
      .type = "T",
      .schema_version = 1,
      .data = nlohmann::json::object(),
      .metadata = {{"command_id", "c1"},
                   {"correlation_id", "k"},
                   {"actor", 42},  // not a string: kept, not dropped
                   {"traceparent", "00-x-y-01"}},
      .recorded_at = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000))};
  const auto meta = annals::EventMetadata::of(event);
  EXPECT_EQ(meta.command_id, "c1");
  EXPECT_EQ(meta.correlation_id, "k");
  EXPECT_EQ(meta.causation_id, "");
  EXPECT_EQ(meta.actor, "");
  EXPECT_EQ(meta.recorded_at, event.recorded_at);
  EXPECT_EQ(meta.extra, nlohmann::json({{"actor", 42}, {"traceparent", "00-x-y-01"}}));

  event.metadata = nlohmann::json::array();  // odd metadata never throws
  EXPECT_EQ(annals::EventMetadata::of(event).extra, nlohmann::json::object());
}

}  // namespace
