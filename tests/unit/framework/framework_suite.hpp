// The framework's behaviour on a real store: repository, snapshots, temporal loading, command
// bus (conflict retries, idempotent commands, metadata, cache) and upcasting of stored events.
// One typed suite, instantiated on the in-memory stores (unit/framework) and on PostgreSQL
// (integration/framework): a behaviour that passes on one and fails on the other is a bug.
//
// A Factory provides:
//   static std::unique_ptr<annals::EventStore> make_store();
//   static std::unique_ptr<annals::SnapshotStore> make_snapshots();
// Stores may share data between tests; every test uses aggregate ids of its own.
//
// The tests are grouped by concern in framework_suite/ (fixture.hpp, repository.hpp,
// snapshots.hpp, temporal.hpp, command_bus.hpp, resent_commands.hpp, upcasting.hpp); this
// header includes them all and registers the suite.
#pragma once

#include <gtest/gtest.h>

#include "framework_suite/command_bus.hpp"
#include "framework_suite/fixture.hpp"
#include "framework_suite/repository.hpp"
#include "framework_suite/resent_commands.hpp"
#include "framework_suite/snapshots.hpp"
#include "framework_suite/temporal.hpp"
#include "framework_suite/upcasting.hpp"

namespace framework_suite {

REGISTER_TYPED_TEST_SUITE_P(
    FrameworkSuite, RepositoryLoadsAStreamWithoutEventsAsNewAggregate,
    RepositorySavesPendingEventsAndLoadsThemBack,
    RepositorySaveUsesTheLoadedVersionAsExpectedVersion,
    RepositorySaveOfANewAggregateExpectsNoStream, RepositorySaveWithoutPendingEventsWritesNothing,
    RepositoryReplaysLongStreamsPageByPage, SnapshotIsTakenByPolicyAndLoadIsSnapshotPlusTail,
    SnapshotPolicyPredicateSeesTheAppendedEvents,
    SnapshotOfAnotherSchemaVersionIsIgnoredAndReplaced,
    ReleasesWithDifferentSnapshotVersionsNeverMisreadEachOther,
    UnreadableSnapshotIsIgnoredAndReplaced, SnapshotWriteFailureDoesNotFailTheCommand,
    SnapshotLoadFailureFallsBackToReplay, LosingAllSnapshotsChangesNothingButSpeed,
    SnapshotAheadOfItsStreamIsRebuiltByTheBus, LoadAtVersionReturnsThePastState,
    LoadAtVersionNeverStartsFromASnapshot, ReplayCheckReportsASnapshotThatDiffersFromTheEvents,
    LoadAsOfReturnsTheStateAtARecordedTime, BusSendsCommandsAndReturnsTheAppendResult,
    BusNoOpCommandWritesNothing, BusCarriesCommandMetadataIntoEveryEvent,
    BusRefusesReservedMetadataKeysBeforeDeciding, BusRetriesAConflictByReloadingAndDecidingAgain,
    BusRedecidesOnTheReloadedStateAfterAConflict, BusGivesUpAfterMaxAttempts,
    BusNeverRetriesADomainError, BusRetriesAnUnavailableStoreWithTheSameEvents,
    ResentCommandReturnsTheOriginalResult, ResentCommandIsRecognisedAfterLaterCommands,
    ResentCommandIsNotDecidedAgain, ResentCommandIsNotDecidedAgainAfterLaterCommands,
    ResentCommandIsNotDecidedAgainAfterASnapshotLoad,
    ResentCommandOlderThanTheWindowStillGetsTheOriginalResult,
    DomainErrorOnAFullyKnownStreamNeedsNoLookUp, RepositoryRecognisesResendsWithFewerOrMoreEvents,
    CommandIdReusedForAnotherAggregateIsAnIdempotencyError,
    CommandIdReusedForADifferentCommandIsAnIdempotencyError,
    CommandIdReusedForADifferentOldCommandIsAnIdempotencyError,
    CommandWithoutAFingerprintIsRecognisedByItsIdAlone,
    CachedStateIsConfirmedBeforeADomainErrorIsReported, StaleCacheConflictsThenSucceeds,
    ConcurrentSendersOnOneAggregateAllSucceed, BusTakesSnapshotsByPerTypePolicy,
    OldEventsAreReadAsTheCurrentSchema, EveryOldVersionOfOneTypeReachesTheCurrentOne,
    UnknownStoredTypeIsATypedErrorNamingTypeStreamAndVersion,
    StoredJsonThatDoesNotFitIsACorruptionErrorNamingTheEvent);

}  // namespace framework_suite
