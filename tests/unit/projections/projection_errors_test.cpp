// The projection store's errors: each is caught as the class its code names, and a
// DeferredWriteError carries the failure it wraps.
#include <exception>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections {
namespace {

TEST(OwnershipLostErrorTest, IsCaughtAsConcurrencyError) {
  try {
    throw OwnershipLostError("commit refused: the lease was taken over");
  } catch (const ConcurrencyError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConcurrency);
    EXPECT_TRUE(e.retryable());
    EXPECT_STREQ(e.what(), "commit refused: the lease was taken over");
    EXPECT_EQ(e.stream(), "");
    EXPECT_EQ(e.expected(), "");
    EXPECT_EQ(e.actual(), std::nullopt);
    EXPECT_FALSE(e.stream_id().has_value());
    EXPECT_FALSE(e.expected_version().has_value());
  }
}

TEST(DeferredWriteErrorTest, IsAnInvalidArgumentErrorCarryingItsCause) {
  const auto cause = std::make_exception_ptr(NotFoundError("relation \"gone\" does not exist"));
  try {
    throw DeferredWriteError("one of 3 queued read-model writes failed", cause);
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_FALSE(e.retryable());
    const auto* deferred = dynamic_cast<const DeferredWriteError*>(&e);
    ASSERT_NE(deferred, nullptr);
    EXPECT_EQ(deferred->cause(), cause);
    EXPECT_THROW(std::rethrow_exception(deferred->cause()), NotFoundError);
  }
}

}  // namespace
}  // namespace annals::projections
