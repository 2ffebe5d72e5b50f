// The driver layer's one retry loop (eventstore/postgres/driver/pooled_call.hpp), on a pool of
// stand-in connections and scripted failures: broken connections are discarded and retried up
// to the policy's limit, transient failures up to theirs (counted apart, or by one counter as
// the projection store counts), a write whose connection broke in flight ends in
// OutcomeUnknownError, and annals errors pass unchanged.
#include "pooled_call.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "connection_pool.hpp"
#include "db_error.hpp"

namespace {

using annals::postgres::detail::ConnectionPool;
using annals::postgres::detail::DbError;
using annals::postgres::detail::RetryPolicy;
using annals::postgres::detail::run_pooled;
using annals::postgres::detail::WriteState;

int g_opened = 0;

struct FakeConnection {
  explicit FakeConnection(const std::string& /*connection_string*/) { ++g_opened; }
};

// Throws the scripted failures in order, then returns the number of calls.
struct Script {
  std::vector<DbError> failures;
  int calls = 0;
  int operator()(FakeConnection& /*connection*/) {
    const auto at = static_cast<std::size_t>(calls++);
    if (at < failures.size()) throw failures[at];
    return calls;
  }
};

DbError broken() { return DbError::broken("gone", true); }
DbError transient() { return DbError::refused("could not serialize", "40001"); }

class PooledCallTest : public ::testing::Test {
 protected:
  void SetUp() override { g_opened = 0; }
  ConnectionPool<FakeConnection> pool_{"url", 2};
};

TEST_F(PooledCallTest, BrokenConnectionsAreRetriedOnNewConnections) {
  Script script{{broken(), broken()}};
  EXPECT_EQ(run_pooled(pool_, "read", false, RetryPolicy{.max_broken_retries = 2}, script), 3);
  EXPECT_EQ(g_opened, 3);  // each broken one discarded
}

TEST_F(PooledCallTest, BrokenConnectionsBeyondTheLimitAreUnavailable) {
  Script script{{broken(), broken(), broken()}};
  EXPECT_THROW(run_pooled(pool_, "read", false, RetryPolicy{.max_broken_retries = 2}, script),
               annals::UnavailableError);
  EXPECT_EQ(script.calls, 3);
}

TEST_F(PooledCallTest, AWriteWhoseConnectionBrokeInFlightIsOutcomeUnknown) {
  Script script{{broken(), broken()}};
  WriteState state;
  EXPECT_THROW(run_pooled(pool_, "write", &state, RetryPolicy{.max_broken_retries = 1}, script),
               annals::OutcomeUnknownError);
  EXPECT_TRUE(state.in_doubt);
}

TEST_F(PooledCallTest, AWriteInDoubtStaysInDoubtWhenALaterAttemptIsUnavailable) {
  Script script{{broken(), DbError::refused("too many clients", "53300")}};
  WriteState state;
  EXPECT_THROW(run_pooled(pool_, "write", &state, RetryPolicy{.max_broken_retries = 1}, script),
               annals::OutcomeUnknownError);
}

TEST_F(PooledCallTest, TransientFailuresAreRetriedUpToTheirLimit) {
  Script script{std::vector<DbError>(8, transient())};
  EXPECT_EQ(run_pooled(pool_, "read", false, RetryPolicy{}, script), 9);
  EXPECT_EQ(g_opened, 1);  // the connection is kept

  Script too_many{std::vector<DbError>(9, transient())};
  EXPECT_THROW(run_pooled(pool_, "read", false, RetryPolicy{}, too_many), annals::UnavailableError);
  EXPECT_EQ(too_many.calls, 9);
}

TEST_F(PooledCallTest, SeparateCountsLetEachKindUseItsOwnLimit) {
  Script script{{transient(), transient(), broken(), broken()}};
  EXPECT_EQ(run_pooled(pool_, "read", false, RetryPolicy{.max_broken_retries = 2}, script), 5);
}

TEST_F(PooledCallTest, OneCountCapsBothKindsByTheRetriesSoFar) {
  const RetryPolicy policy{.max_broken_retries = 2, .max_transient_retries = 8, .one_count = true};
  Script script{{transient(), transient(), broken()}};
  EXPECT_THROW(run_pooled(pool_, "call", false, policy, script), annals::UnavailableError);
  EXPECT_EQ(script.calls, 3);  // the third attempt's broken connection is not retried

  Script allowed{{broken(), transient(), transient()}};
  EXPECT_EQ(run_pooled(pool_, "call", false, policy, allowed), 4);
}

TEST_F(PooledCallTest, FinalFailuresAreTranslatedAtOnce) {
  Script script{{DbError::refused("bad input", "22P02")}};
  EXPECT_THROW(run_pooled(pool_, "read", false, RetryPolicy{.max_broken_retries = 2}, script),
               annals::InvalidArgumentError);
  EXPECT_EQ(script.calls, 1);
}

TEST_F(PooledCallTest, AnnalsErrorsPassUnchanged) {
  int calls = 0;
  EXPECT_THROW(run_pooled(pool_, "read", false, RetryPolicy{.max_broken_retries = 2},
                          [&](FakeConnection&) -> int {
                            ++calls;
                            throw annals::NotFoundError("no such thing");
                          }),
               annals::NotFoundError);
  EXPECT_EQ(calls, 1);
}

TEST_F(PooledCallTest, ACallMayTakeTheLease) {
  bool discarded = false;
  run_pooled(pool_, "call", false, RetryPolicy{},
             [&](ConnectionPool<FakeConnection>::Lease& lease) {
               lease.discard();
               discarded = true;
             });
  EXPECT_TRUE(discarded);
  static_cast<void>(run_pooled(pool_, "call", false, RetryPolicy{}, Script{}));
  EXPECT_EQ(g_opened, 2);  // the discarded connection was not reused
}

}  // namespace
