// The driver layer's translator (eventstore/postgres/driver/error_translation.hpp): classify
// and rethrow_translated on DbError values, for every SQLSTATE class they map, broken
// connections (read, write) and commits in doubt, in both wordings (Origin).
#include "error_translation.hpp"

#include <stdexcept>
#include <string>
#include <typeinfo>

#include <gtest/gtest.h>
#include <pqxx/except>

#include "annals/eventstore/error.hpp"

namespace {

using annals::postgres::detail::classify;
using annals::postgres::detail::DbError;
using annals::postgres::detail::Failure;
using annals::postgres::detail::Origin;
using annals::postgres::detail::rethrow_translated;

DbError refused(const char* sqlstate) { return DbError::refused("server says no", sqlstate); }

// Runs the translator and returns what it threw, for an exact type check.
template <typename E>
E translated(const DbError& error, bool write = false, Origin origin = Origin::kEventStore) {
  try {
    rethrow_translated(error, "test call", write, origin);
  } catch (const E& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw " << typeid(e).name() << ": " << e.what();
  }
  throw std::logic_error("unreachable");
}

// The exact class thrown, by its dynamic type name.
std::string class_of(const DbError& error, bool write = false,
                     Origin origin = Origin::kEventStore) {
  try {
    rethrow_translated(error, "test call", write, origin);
  } catch (const std::exception& e) {
    return typeid(e).name();
  }
  return "nothing";
}

template <typename E>
std::string name_of() {
  return typeid(E).name();
}

TEST(ClassifyTest, BrokenConnectionIsBroken) {
  EXPECT_EQ(classify(DbError::broken("gone", true)), Failure::kBrokenConnection);
  EXPECT_EQ(classify(DbError::broken("cannot connect", false)), Failure::kBrokenConnection);
}

TEST(ClassifyTest, ServerGoingAwayIsBroken) {
  for (const char* state : {"57P01", "57P02", "57P03", "08000", "08006", "08001"}) {
    EXPECT_EQ(classify(refused(state)), Failure::kBrokenConnection) << state;
  }
}

TEST(ClassifyTest, TransientFailuresAreRetried) {
  for (const char* state : {"23505", "40001", "40P01", "40000", "40003"}) {
    EXPECT_EQ(classify(refused(state)), Failure::kRetry) << state;
  }
}

TEST(ClassifyTest, OtherFailuresAreFinal) {
  for (const char* state :
       {"", "23503", "22P02", "42501", "42P01", "57014", "53100", "P0001", "XX000", "40002"}) {
    EXPECT_EQ(classify(refused(state)), Failure::kFinal) << state;
  }
  EXPECT_EQ(classify(DbError::client("bad call")), Failure::kFinal);
}

TEST(ClassifyTest, CommitInDoubtIsFinal) {
  EXPECT_EQ(classify(DbError::commit_in_doubt("lost")), Failure::kFinal);
}

TEST(ClassifyTest, LibpqxxExceptionsGoThroughTheBoundary) {
  EXPECT_EQ(classify(pqxx::broken_connection("gone")), Failure::kBrokenConnection);
  EXPECT_EQ(classify(pqxx::serialization_failure("retry")), Failure::kRetry);
  EXPECT_EQ(classify(pqxx::deadlock_detected("retry")), Failure::kRetry);
  EXPECT_EQ(classify(pqxx::in_doubt_error("lost")), Failure::kFinal);
  EXPECT_EQ(classify(pqxx::unique_violation("dup", "q", "23505")), Failure::kRetry);
}

TEST(ErrorTranslationTest, BrokenReadIsUnavailable) {
  const auto e = translated<annals::UnavailableError>(DbError::broken("gone", true));
  EXPECT_EQ(typeid(e), typeid(annals::UnavailableError));
  EXPECT_NE(std::string(e.what()).find("test call: database unavailable (gone)"),
            std::string::npos);
}

TEST(ErrorTranslationTest, BrokenWriteIsOutcomeUnknown) {
  EXPECT_EQ(class_of(DbError::broken("gone", true), true), name_of<annals::OutcomeUnknownError>());
  EXPECT_EQ(class_of(refused("57P01"), true), name_of<annals::OutcomeUnknownError>());
  EXPECT_EQ(class_of(refused("08006"), false), name_of<annals::UnavailableError>());
}

TEST(ErrorTranslationTest, CommitInDoubtIsOutcomeUnknownForReadsToo) {
  const auto e = translated<annals::OutcomeUnknownError>(DbError::commit_in_doubt("lost"));
  EXPECT_NE(std::string(e.what()).find("commit outcome unknown (lost)"), std::string::npos);
  EXPECT_EQ(class_of(DbError::commit_in_doubt("lost"), false, Origin::kReadModel),
            name_of<annals::OutcomeUnknownError>());
}

TEST(ErrorTranslationTest, InsufficientPrivilegeIsPermissionDenied) {
  EXPECT_EQ(class_of(refused("42501")), name_of<annals::PermissionDeniedError>());
  EXPECT_EQ(class_of(refused("42501"), false, Origin::kReadModel),
            name_of<annals::PermissionDeniedError>());
}

TEST(ErrorTranslationTest, UniqueViolationOfTheStoreIsIdempotency) {
  const auto e = translated<annals::IdempotencyError>(refused("23505"));
  EXPECT_NE(std::string(e.what()).find("an event id is already stored [SQLSTATE 23505]"),
            std::string::npos);
}

TEST(ErrorTranslationTest, OtherIntegrityViolationsOfTheStoreAreInternal) {
  EXPECT_EQ(class_of(refused("23503")), name_of<annals::InternalError>());
}

TEST(ErrorTranslationTest, DataExceptionsAndProgramLimitsAreInvalidArgument) {
  for (const char* state : {"22P02", "22021", "22023", "54000"}) {
    EXPECT_EQ(class_of(refused(state)), name_of<annals::InvalidArgumentError>()) << state;
  }
}

TEST(ErrorTranslationTest, MissingObjectsOfTheStoreAskForMigrate) {
  for (const char* state : {"42P01", "42883", "3F000"}) {
    const auto e = translated<annals::NotFoundError>(refused(state));
    EXPECT_NE(std::string(e.what()).find("run `annals migrate`"), std::string::npos) << state;
  }
}

TEST(ErrorTranslationTest, CancelsResourcesAndExhaustedRetriesAreUnavailable) {
  for (const char* state : {"57014", "53100", "53200", "53300", "40001", "40P01"}) {
    EXPECT_EQ(class_of(refused(state)), name_of<annals::UnavailableError>()) << state;
  }
}

TEST(ErrorTranslationTest, AnythingElseIsInternal) {
  for (const char* state : {"", "XX000", "P0001", "42601", "40000", "40003"}) {
    const auto e = translated<annals::InternalError>(refused(state));
    EXPECT_NE(std::string(e.what()).find("unexpected database error [SQLSTATE " +
                                         std::string(state) + "]"),
              std::string::npos)
        << state;
  }
  EXPECT_EQ(class_of(DbError::client("bad call")), name_of<annals::InternalError>());
}

TEST(ErrorTranslationTest, ReadModelIntegrityViolationsAreInvalidArgument) {
  for (const char* state : {"23505", "23503", "23502", "23514"}) {
    const auto e =
        translated<annals::InvalidArgumentError>(refused(state), false, Origin::kReadModel);
    EXPECT_NE(std::string(e.what()).find("violates a constraint of the read model"),
              std::string::npos)
        << state;
  }
}

TEST(ErrorTranslationTest, ReadModelMissingObjectsAreNotFoundWithoutMigrate) {
  for (const char* state : {"42P01", "42883", "3F000"}) {
    const auto e = translated<annals::NotFoundError>(refused(state), false, Origin::kReadModel);
    EXPECT_EQ(std::string(e.what()).find("annals migrate"), std::string::npos) << state;
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << state;
  }
}

TEST(ErrorTranslationTest, ReadModelInvalidStatementsAreInvalidArgument) {
  const auto e =
      translated<annals::InvalidArgumentError>(refused("42601"), false, Origin::kReadModel);
  EXPECT_NE(std::string(e.what()).find("invalid statement"), std::string::npos);
}

TEST(ErrorTranslationTest, LibpqxxExceptionsAreTranslatedThroughTheBoundary) {
  try {
    rethrow_translated(pqxx::insufficient_privilege("permission denied"), "test call", false);
  } catch (const annals::PermissionDeniedError& e) {
    EXPECT_NE(std::string(e.what()).find("[SQLSTATE 42501]"), std::string::npos);
  }
  EXPECT_THROW(rethrow_translated(pqxx::in_doubt_error("lost"), "test call", false),
               annals::OutcomeUnknownError);
}

}  // namespace
