// The driver layer's libpqxx boundary (eventstore/postgres/driver/db_error.hpp): each kind of
// libpqxx 6.4 exception, constructed here, becomes the DbError the translator reads, including
// libpqxx's quirks (42501 dropped from insufficient_privilege, the SQLSTATE-less
// transaction_rollback family, in_doubt_error).
#include "db_error.hpp"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>
#include <pqxx/except>

namespace {

using annals::postgres::detail::DbError;
using annals::postgres::detail::to_db_error;

TEST(DbErrorTest, SqlErrorKeepsItsSqlstateAndMessage) {
  const auto error = to_db_error(pqxx::sql_error("duplicate key", "annals_append", "23505"));
  EXPECT_EQ(error.sqlstate(), "23505");
  EXPECT_STREQ(error.what(), "duplicate key");
  EXPECT_FALSE(error.connection_broken());
  EXPECT_FALSE(error.may_have_reached_server());
  EXPECT_FALSE(error.outcome_unknown());
}

TEST(DbErrorTest, SqlErrorSubclassKeepsItsSqlstate) {
  EXPECT_EQ(to_db_error(pqxx::unique_violation("dup", "q", "23505")).sqlstate(), "23505");
  EXPECT_EQ(to_db_error(pqxx::undefined_table("no table", "q", "42P01")).sqlstate(), "42P01");
  EXPECT_EQ(to_db_error(pqxx::data_exception("bad", "q", "22P02")).sqlstate(), "22P02");
}

TEST(DbErrorTest, InsufficientPrivilegeWithoutSqlstateIs42501) {
  const auto error = to_db_error(pqxx::insufficient_privilege("permission denied"));
  EXPECT_EQ(error.sqlstate(), "42501");
  EXPECT_STREQ(error.what(), "permission denied");
}

TEST(DbErrorTest, InsufficientPrivilegeWithSqlstateKeepsIt) {
  EXPECT_EQ(to_db_error(pqxx::insufficient_privilege("denied", "q", "42501")).sqlstate(), "42501");
}

TEST(DbErrorTest, SqlErrorWithoutSqlstateHasNone) {
  const auto error = to_db_error(pqxx::sql_error("odd"));
  EXPECT_EQ(error.sqlstate(), "");
  EXPECT_FALSE(error.connection_broken());
}

TEST(DbErrorTest, TransactionRollbackFamilyGetsItsSqlstateBack) {
  EXPECT_EQ(to_db_error(pqxx::serialization_failure("could not serialize")).sqlstate(), "40001");
  EXPECT_EQ(to_db_error(pqxx::deadlock_detected("deadlock")).sqlstate(), "40P01");
  EXPECT_EQ(to_db_error(pqxx::statement_completion_unknown("unknown")).sqlstate(), "40003");
  EXPECT_EQ(to_db_error(pqxx::transaction_rollback("rolled back")).sqlstate(), "40000");
  const auto error = to_db_error(pqxx::serialization_failure("could not serialize"));
  EXPECT_FALSE(error.connection_broken());
  EXPECT_STREQ(error.what(), "could not serialize");
}

TEST(DbErrorTest, BrokenConnectionIsBrokenAndMayHaveReachedTheServer) {
  const auto error = to_db_error(pqxx::broken_connection("server closed the connection"));
  EXPECT_TRUE(error.connection_broken());
  EXPECT_TRUE(error.may_have_reached_server());
  EXPECT_FALSE(error.outcome_unknown());
  EXPECT_EQ(error.sqlstate(), "");
  EXPECT_STREQ(error.what(), "server closed the connection");
}

TEST(DbErrorTest, TooManyConnectionsIsBroken) {
  EXPECT_TRUE(to_db_error(pqxx::too_many_connections("too many")).connection_broken());
}

TEST(DbErrorTest, InDoubtErrorIsOutcomeUnknown) {
  const auto error = to_db_error(pqxx::in_doubt_error("lost during commit"));
  EXPECT_TRUE(error.outcome_unknown());
  EXPECT_TRUE(error.may_have_reached_server());
  EXPECT_FALSE(error.connection_broken());
  EXPECT_STREQ(error.what(), "lost during commit");
}

TEST(DbErrorTest, ClientSideErrorsHaveNoSqlstate) {
  for (const auto& error :
       {to_db_error(pqxx::usage_error("misuse")),
        to_db_error(pqxx::conversion_error("not a number")),
        to_db_error(pqxx::unexpected_rows("0 rows")), to_db_error(std::runtime_error("other"))}) {
    EXPECT_EQ(error.sqlstate(), "");
    EXPECT_FALSE(error.connection_broken());
    EXPECT_FALSE(error.may_have_reached_server());
  }
}

TEST(DbErrorTest, DbErrorPassesUnchanged) {
  const auto error = to_db_error(DbError::broken("gone", false));
  EXPECT_TRUE(error.connection_broken());
  EXPECT_FALSE(error.may_have_reached_server());
  EXPECT_STREQ(error.what(), "gone");
  EXPECT_EQ(to_db_error(DbError::refused("no", "P0001")).sqlstate(), "P0001");
}

}  // namespace
