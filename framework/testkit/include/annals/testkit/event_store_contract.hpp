// The EventStore contract: one GoogleTest typed test suite that every EventStore must pass,
// ours (in-memory, PostgreSQL) and third parties' (ARCHITECTURE decision 1). A behaviour that
// passes on one store and fails on another is a bug.
//
//   struct MyStoreFactory {
//     static std::unique_ptr<annals::EventStore> make() { return make_my_store(); }
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(MyStore, EventStoreContract, MyStoreFactory);
//
// Requires of the factory: every call returns a usable store. Stores may share data between
// calls (the PostgreSQL factory reuses one database): each test writes only to streams of its
// own random category and never assumes that the global log starts empty.
//
// Thread safety: the tests drive the store from several threads, as the interface allows.
//
// The tests are grouped by concern in annals/testkit/event_store_contract/: append.hpp
// (expected versions, concurrency, multi-stream appends), idempotency.hpp, read.hpp (streams
// and the global log), event_content.hpp (validation, limits, round trips), json_text.hpp
// (data and metadata appended as JSON text), lifecycle.hpp (soft delete, retention rules) and
// subscribe.hpp (subscriptions, head position,
// change signals); fixture.hpp holds the fixture and its helpers. This header includes them
// all and registers the suite, so it is the one to include.
#pragma once

#include "annals/testkit/event_store_contract/append.hpp"
#include "annals/testkit/event_store_contract/event_content.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"
#include "annals/testkit/event_store_contract/idempotency.hpp"
#include "annals/testkit/event_store_contract/json_text.hpp"
#include "annals/testkit/event_store_contract/lifecycle.hpp"
#include "annals/testkit/event_store_contract/read.hpp"
#include "annals/testkit/event_store_contract/subscribe.hpp"

REGISTER_TYPED_TEST_SUITE_P(
    EventStoreContract,
    // head position and change signals
    HeadPositionIsAtOrAfterEverySettledEvent, HeadPositionNeverMovesBackwards, WatchSignalsAnAppend,
    WatchInterruptEndsAWait,
    // expected versions
    AppendWithAnyToNewStreamSucceeds, AppendWithAnyToExistingStreamSucceeds,
    AppendWithNoStreamToNewStreamSucceeds, AppendWithNoStreamToExistingStreamThrowsConcurrencyError,
    AppendWithExactZeroToNewStreamSucceeds,
    AppendWithExactZeroToExistingStreamThrowsConcurrencyError,
    AppendWithStreamExistsToExistingStreamSucceeds,
    AppendWithStreamExistsToNewStreamThrowsConcurrencyError, AppendWithCorrectExactVersionSucceeds,
    AppendWithWrongExactVersionThrowsConcurrencyError,
    AppendWithExactVersionToMissingStreamThrowsConcurrencyError,
    ConcurrentAppendsWithSameExactVersionLetExactlyOneWin,
    ConcurrentCreationOfOneStreamLetsExactlyOneWin,
    // multi-stream appends
    AppendMultiWritesEveryStreamInRequestOrder, AppendMultiWithConflictInSecondStreamWritesNothing,
    AppendMultiConflictNamesFirstFailingStreamInRequestOrder,
    AppendMultiWithRepeatedStreamThrowsInvalidArgumentError,
    AppendMultiWithNoStreamsThrowsInvalidArgumentError, AppendMultiWithAnEmptyPartWritesNothing,
    // idempotency
    ExactResendReturnsOriginalResultAndWritesNothing, ResendAfterLaterAppendsReturnsOriginalResult,
    PartialOverlapThrowsIdempotencyErrorAndWritesNothing,
    ResendInAnotherOrderThrowsIdempotencyError, EventIdStoredInAnotherStreamThrowsIdempotencyError,
    MultiStreamExactResendReturnsOriginalResults,
    MultiStreamResendMixedWithNewEventsThrowsIdempotencyError,
    ResendWithChangedContentThrowsIdempotencyErrorNamingTheEvent,
    SingleEventResendWithChangedDataThrowsIdempotencyError, ResendWithReorderedKeysIsExact,
    MultiStreamResendWithChangedContentNamesTheDifferingStream,
    DuplicateIdsWithinOneAppendThrowInvalidArgumentError, NilEventIdThrowsInvalidArgumentError,
    GeneratedIdsAreDistinctAndNotNil,
    // reading streams
    ReadStreamForwardReturnsEventsAsAppended, ReadStreamBackwardReturnsNewestFirst,
    ReadStreamForwardHonoursFromAndMaxCount, ReadStreamBackwardHonoursFromAndMaxCount,
    ReadingMissingStreamReturnsNothing, StreamVersionCountsEvents,
    // reading the global log
    ReadAllReturnsAppendsInOrderWithIncreasingPositions, EventsOfOneAppendShareACommitGroup,
    ConcurrentAppendsStayContiguousInTheGlobalLog, ReadAllPagesWithoutGapsOrRepeats,
    ReadAllFiltersByCategory, ReadAllFiltersByEventTypes, ReadAllHonoursMaxCount,
    ReadAllAfterLastEventReturnsNothing, PositionsRoundTripThroughTheirStringForm,
    // validation and limits
    OversizedDataThrowsInvalidArgumentErrorAndWritesNothing,
    OversizedMetadataThrowsInvalidArgumentErrorAndWritesNothing,
    TooManyEventsThrowInvalidArgumentErrorAndWriteNothing, EmptyAppendThrowsInvalidArgumentError,
    MetadataThatIsNotAnObjectThrowsInvalidArgumentError, BadTypeNameThrowsInvalidArgumentError,
    SchemaVersionBelowOneThrowsInvalidArgumentError, InvalidUtf8InDataThrowsInvalidArgumentError,
    NulCharacterInDataThrowsInvalidArgumentError, InvalidLaterEventWritesNothing,
    // round trips
    DataMayBeAnyJsonValue, UnicodeAndSqlMetacharactersRoundTripVerbatim,
    RecordedAtIsWithinTheAppendWindow,
    // JSON text (NewEvent::data_json, metadata_json)
    JsonTextReadsBackAsTheTreeItParsesTo, JsonTextAndTreeMixWithinOneEvent,
    ResendInTheOtherJsonFormIsExact, BadJsonTextIsRefusedAndWritesNothing,
    MetadataJsonThatIsNotAnObjectIsRefused, DataOrMetadataSetAsTreeAndTextIsRefused,
    JsonTextAtTheLimitsIsAccepted,
    // subscriptions
    SubscriptionCatchesUpThenDeliversLiveEventsExactlyOnce,
    SubscriptionWithFilterDeliversOnlyMatchingEvents,
    SubscriptionFromMidPositionDeliversOnlyLaterEvents,
    SubscriptionHandlerExceptionBecomesStopReason, SubscriptionStopIsIdempotentAndEndsDelivery,
    SubscriptionIsLiveOnceCaughtUp,
    // stream lifecycle: soft delete
    DeleteStreamAppendsATombstoneAndReportsTheStreamDeleted,
    AppendToADeletedStreamThrowsStreamDeletedErrorAndWritesNothing,
    AppendMultiWithADeletedStreamWritesNothing,
    ReopenAppendsAfterTheTombstoneAndTheStreamIsLiveAgain, DeleteStreamChecksTheExpectedVersion,
    DeletingAStreamWithoutEventsIsRefused, DeletingADeletedStreamThrowsStreamDeletedError,
    DeletedStreamsEventsAndTombstoneStayInTheGlobalLog,
    ExactResendAfterDeleteReturnsTheOriginalResult, TombstoneTypeIsRefusedWithinALargerAppend,
    DeleteRacingAppendsWithTheSameExpectedVersionLetsExactlyOneWin,
    // stream lifecycle: retention rules (stream metadata)
    StreamMetadataIsSetReplacedAndCleared, StreamMetadataOutOfRangeThrowsInvalidArgumentError,
    ReadStreamHonoursTruncateBeforeAndKeepsVersions, ReadStreamHonoursMaxCount,
    ReadStreamHonoursMaxAge, StreamMetadataAndDeleteTogether);
