// The ProjectionStore contract: one GoogleTest typed test suite that every ProjectionStore must
// pass, ours (in-memory, PostgreSQL) and third parties'. A behaviour that passes on one store
// and fails on another is a bug (ARCHITECTURE decision 1, applied to the read side).
//
//   struct MyStoreFactory {
//     static std::unique_ptr<annals::projections::ProjectionStore> make() { return ...; }
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(Mine, ProjectionStoreContract, MyStoreFactory);
//
// Requires of the factory: every call returns a usable store. Stores may share data between
// calls (the PostgreSQL factory reuses one database): every test uses projection names of its
// own ("contract_<random hex>_<suffix>") and never assumes that list() holds only its own.
//
// What it pins down, beyond the header comments of projection_store.hpp:
//  - the first lease of a projection carries a fencing token >= 1; re-acquiring a lease one
//    already holds keeps the token; every acquisition after expiry or release increases it;
//  - the Lease returned by try_acquire()/renew() is what list() shows (owner, token, expiry);
//  - a commit is refused (OwnershipLostError, nothing stored, parked letters included) for a
//    stale fencing token, a stale expected checkpoint, or a released lease; begin() may refuse
//    already, with the same error;
//  - commit() accepts any position, including the unchanged checkpoint (a dead-letter retry)
//    and Position::start() (a rebuild);
//  - report() with a stale lease is ignored, without an error;
//  - update_rebuild() of an unknown id throws NotFoundError;
//  - Batch::commit_layout() removes, fences and places rows together, or refuses all of it
//    (a stale held lease, open dead letters on a removed row).
//
// Thread safety: one test drives the store from several threads, as the interface allows.
// Timing: lease expiry is waited for with a bounded loop of try_acquire() calls (a lease of
// 50 ms); nothing else depends on time.
//
// The tests are grouped by concern in annals/testkit/projection_store_contract/:
// registration.hpp (prepare, names, list(), report()), leases.hpp, checkpoints.hpp (batches,
// the fenced checkpoint compare-and-set, wait_for_checkpoint()), dead_letters.hpp and
// rebuilds.hpp, layouts.hpp; fixture.hpp holds the fixture and its helpers. This header includes
// them all and registers the suite, so it is the one to include (target
// annals::testkit_projections).
#pragma once

#include "annals/testkit/projection_store_contract/checkpoints.hpp"
#include "annals/testkit/projection_store_contract/dead_letters.hpp"
#include "annals/testkit/projection_store_contract/fixture.hpp"
#include "annals/testkit/projection_store_contract/layouts.hpp"
#include "annals/testkit/projection_store_contract/leases.hpp"
#include "annals/testkit/projection_store_contract/rebuilds.hpp"
#include "annals/testkit/projection_store_contract/registration.hpp"

REGISTER_TYPED_TEST_SUITE_P(
    ProjectionStoreContract,
    // registration
    PrepareIsIdempotentAndRunsSetupEachTime, PrepareRejectsBadNames,
    UnknownProjectionThrowsNotFoundError, CheckpointStartsAtStart, ListShowsEveryPreparedProjection,
    // leases
    TryAcquireGrantsALeaseWithAFencingToken, SecondOwnerIsRefusedWhileTheLeaseIsHeld,
    HolderReacquiresWithTheSameToken, RenewExtendsTheLeaseAndKeepsTheToken,
    ReleaseLetsAnotherOwnerTakeOverAtOnce, ReacquiringAfterReleaseIncreasesTheToken,
    TakeoverAfterExpiryIncreasesTheFencingToken, ExpiredHolderReacquiresWithAHigherToken,
    ConcurrentAcquireGrantsExactlyOneLease,
    // batches
    CommitStoresTheCheckpoint, CheckpointsOfProjectionsAreIndependent,
    CommitWithAStaleTokenIsRefusedAndStoresNothing,
    CommitFromAStaleCheckpointIsRefusedAndStoresNothing, CommitAfterReleaseIsRefused,
    BatchDestroyedWithoutCommitStoresNothing,
    // dead letters
    ParkedEventBecomesADeadLetterCarryingTheFullEvent, DeadLettersListOldestFirstWithFilters,
    RequestRetryMovesAParkedLetterToRetryRequested, ResolveDeadLetterTakesEffectWithTheCommit,
    SkipGivesUpOnAParkedOrRequestedLetter, ClosedLettersRefuseRetryAndResolvedRefuseSkip,
    UnknownDeadLetterThrowsNotFoundError, RetryFailedParksAgainWithTheNewErrorAndOneMoreAttempt,
    // reports
    ReportShowsInList, ReportWithAStaleLeaseIsIgnored,
    // rebuild requests
    RequestRebuildReturnsTheOpenRequestWhenRepeated, RebuildRequestFollowsOwnerUpdates,
    ClosedRebuildAllowsANewRequest, UnknownRebuildRequestIsEmptyAndCannotBeUpdated,
    RebuildRequestsOfProjectionsAreIndependent,
    // wait_for_checkpoint
    WaitForCheckpointReturnsTrueOnceReached, WaitForCheckpointTimesOutWhenNotReached,
    WaitForCheckpointOfAnUnknownProjectionThrows,
    // partition layout changes
    CommitLayoutReplacesRowsAtOnePosition, CommitLayoutWithAStaleHeldLeaseChangesNothing,
    CommitLayoutRefusesToRemoveARowWithOpenDeadLetters);
