// Value types of the event store: stream ids, event ids, versions, positions and events.
//
// All types here are regular values validated in their constructors: a StreamId that exists
// is a valid stream id. Invalid input throws annals::InvalidArgumentError naming the problem.
//
//   annals::StreamId id{"account-42"};          // category "account"
//   auto e = annals::EventId::generate();        // time-ordered UUID (version 7)
//   auto ev = annals::ExpectedVersion::exact(3);
//
// Thread safety: values; distinct objects may be used from any thread.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/uuid/uuid.hpp>
#include <nlohmann/json.hpp>

#include "annals/eventstore/lazy_json.hpp"

namespace annals {

/// The name of a stream: `category-id` by convention ("account-42").
///
/// Valid ids are non-empty, at most kMaxBytes bytes of UTF-8, without control characters.
class StreamId {
 public:
  static constexpr std::size_t kMaxBytes = 512;

  /// Throws: InvalidArgumentError if the id is empty, too long, not UTF-8 or has control
  /// characters.
  explicit StreamId(std::string value);

  [[nodiscard]] const std::string& value() const noexcept { return value_; }
  /// The part before the first '-', or the whole id when it has none.
  [[nodiscard]] std::string_view category() const noexcept;

  friend bool operator==(const StreamId&, const StreamId&) = default;
  friend auto operator<=>(const StreamId&, const StreamId&) = default;

 private:
  std::string value_;
};

/// The category of a stream id string, the part before the first '-'.
[[nodiscard]] std::string_view category_of(std::string_view stream_id) noexcept;

/// A globally unique event id (a UUID).
class EventId {
 public:
  /// The nil UUID.
  EventId() = default;
  explicit EventId(const boost::uuids::uuid& value) noexcept : value_(value) {}

  /// A new time-ordered UUID (RFC 9562 version 7, monotonic within this thread).
  /// Cost: no system call after the first on a thread.
  [[nodiscard]] static EventId generate();
  /// Parses the canonical 36-character form. Throws: InvalidArgumentError.
  [[nodiscard]] static EventId parse(std::string_view text);

  [[nodiscard]] const boost::uuids::uuid& uuid() const noexcept { return value_; }
  [[nodiscard]] bool is_nil() const noexcept { return value_.is_nil(); }
  /// Canonical lower-case form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const EventId&, const EventId&) = default;
  /// Byte-wise order (uuid::data is a C array, which has no <=> of its own; memcmp, because
  /// g++ 12 at -O3 reports a false -Wstringop-overread for the std algorithm here).
  friend std::strong_ordering operator<=>(const EventId& a, const EventId& b) noexcept {
    return std::memcmp(a.value_.data, b.value_.data, sizeof a.value_.data) <=> 0;
  }

 private:
  boost::uuids::uuid value_{};
};

/// The number of events in a stream, or the version of one event in it (the first is 1).
using StreamVersion = std::int64_t;

/// What the writer believes about a stream's version; checked inside the store on every append.
class ExpectedVersion {
 public:
  enum class Kind { kAny, kNoStream, kStreamExists, kExact };

  /// No check.
  [[nodiscard]] static ExpectedVersion any() noexcept { return ExpectedVersion(Kind::kAny, -1); }
  /// The stream must have no events.
  [[nodiscard]] static ExpectedVersion no_stream() noexcept {
    return ExpectedVersion(Kind::kNoStream, -1);
  }
  /// The stream must have at least one event.
  [[nodiscard]] static ExpectedVersion stream_exists() noexcept {
    return ExpectedVersion(Kind::kStreamExists, -1);
  }
  /// The stream's version must be exactly `version`; exact(0) means "no events yet", like
  /// no_stream(). Throws: InvalidArgumentError if version < 0.
  [[nodiscard]] static ExpectedVersion exact(StreamVersion version);
  /// Parses "any", "no-stream", "exists" or a non-negative number. Throws: InvalidArgumentError.
  [[nodiscard]] static ExpectedVersion parse(std::string_view text);

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  /// The exact version; meaningful only for kExact.
  [[nodiscard]] StreamVersion version() const noexcept { return version_; }
  /// True when a stream at `actual` (empty = no events) satisfies this expectation.
  [[nodiscard]] bool matches(std::optional<StreamVersion> actual) const noexcept;
  /// "any", "no-stream", "exists" or the number.
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const ExpectedVersion&, const ExpectedVersion&) = default;

 private:
  ExpectedVersion(Kind kind, StreamVersion version) noexcept : kind_(kind), version_(version) {}
  Kind kind_;
  StreamVersion version_;
};

/// A place in the global log. Opaque and totally ordered: readers checkpoint it and continue
/// strictly after it. Its string form round-trips through parse().
///
/// The order is (commit group, sequence): events of one append share a commit group, and
/// groups are ordered so that a reader never sees a later group before an earlier one has
/// settled (ARCHITECTURE decision 5). Do not do arithmetic on it.
class Position {
 public:
  /// Before every event.
  constexpr Position() noexcept = default;
  constexpr Position(std::uint64_t commit, std::int64_t sequence) noexcept
      : commit_(commit), sequence_(sequence) {}

  [[nodiscard]] static constexpr Position start() noexcept { return Position(); }
  /// Parses the string form ("<commit>:<sequence>" or "0" for start). Throws:
  /// InvalidArgumentError.
  [[nodiscard]] static Position parse(std::string_view text);

  [[nodiscard]] constexpr std::uint64_t commit() const noexcept { return commit_; }
  /// The event's global sequence number (unique, but not the read order on its own).
  [[nodiscard]] constexpr std::int64_t sequence() const noexcept { return sequence_; }
  [[nodiscard]] std::string to_string() const;

  friend constexpr bool operator==(const Position&, const Position&) = default;
  friend constexpr auto operator<=>(const Position&, const Position&) = default;

 private:
  std::uint64_t commit_ = 0;
  std::int64_t sequence_ = 0;
};

/// An event to append.
///
/// Data and metadata come either as nlohmann::json trees (`data`, `metadata`) or, for an
/// application that already holds JSON text (its own serializer, a message it received), as
/// that text (`data_json`, `metadata_json`), which a store takes as it is: no tree is built on
/// the way to PostgreSQL. Set at most one form per part; the tree of a part given as text stays
/// at its default (an empty object).
///
///   annals::NewEvent event{.type = "MoneyDeposited"};
///   event.data_json = R"({"amount_cents": 1250, "currency": "EUR"})";
///
/// Text is checked as strictly as a tree, on the client, before anything is sent (append
/// throws InvalidArgumentError naming the stream, the event index and the problem; nothing is
/// written): one JSON value (RFC 8259: no trailing text, no byte order mark, no comments),
/// valid UTF-8 with every `\u` escape a character (no unpaired surrogate), no `\u0000`
/// (PostgreSQL's jsonb cannot store it), no number a double cannot hold (beyond about 1.8e308,
/// or not zero but rounding to zero) or PostgreSQL's numeric refuses (more than 16383 digits
/// after the decimal point, counting the exponent), nested at most kMaxJsonDepth levels, within
/// AppendLimits' byte limits (counted on the text as given), and metadata an object. Stored,
/// it is the same event as the tree the text parses to: it reads back as that tree, and a
/// re-send of the same ids may use either form (content is compared as JSON values, so key
/// order and spacing do not matter; see docs/concepts.md, "Appending JSON text").
/// Throws (from append, append_multi): InvalidArgumentError, as above, and when a part is set
/// both as a tree and as text.
/// Cost: one pass over each text to validate it, no allocation, in place of building and
/// serializing a tree; the store moves the text into its request.
struct NewEvent {
  /// Left empty, the store assigns a time-ordered id before sending. Supply it (derived from a
  /// command id, say) to make the append idempotent across retries.
  std::optional<EventId> id;
  /// Stable type name, e.g. "MoneyDeposited". Non-empty, at most 256 bytes, no control chars.
  std::string type;
  /// Schema version of `data`, >= 1.
  std::int32_t schema_version = 1;
  /// The payload: any JSON value (usually an object).
  nlohmann::json data = nlohmann::json::object();
  /// Free-form metadata: a JSON object (correlation ids, traceparent, ...).
  nlohmann::json metadata = nlohmann::json::object();
  /// The payload as JSON text, in place of `data` (which then must stay an empty object).
  /// Empty: `data` is the payload.
  std::optional<std::string> data_json;
  /// The metadata as JSON text of an object, in place of `metadata` (which then must stay an
  /// empty object). Empty: `metadata` is the metadata.
  std::optional<std::string> metadata_json;

  /// Equal when every member is equal: an event given as text is not equal to the same event
  /// given as a tree (though a store treats them as the same content).
  friend bool operator==(const NewEvent&, const NewEvent&) = default;
};

/// Why a stored event could not be decoded, with what was stored (see
/// RecordedEvent::decode_failure).
struct DecodeFailure {
  /// What is wrong, naming the column, e.g. `invalid stream id "a\u000Ab": it contains control
  /// character U+000A at byte offset 1`.
  std::string reason;
  /// The stored stream id, type, data and metadata, byte for byte as the store returned them
  /// (data and metadata as JSON text).
  std::string stream_id;
  std::string type;
  std::string data;
  std::string metadata;

  friend bool operator==(const DecodeFailure&, const DecodeFailure&) = default;
};

/// An event as stored.
///
/// An undecodable event: a store delivers a stored row it cannot decode (one that breaks a rule
/// every append enforces, such as a stream id with a control character, or JSON it cannot
/// parse) as an event with `decode_failure` set, instead of throwing from the read. Throwing
/// would stop every reader of the log at that row, forever, before any handler could decide
/// what to do with it; delivered and marked, it can be parked as a projection's dead letter
/// while the log goes on. Readers that care about the payload check it first; the
/// framework's codec refuses such an event with a CorruptionError naming it. Its other fields:
/// version, position, id, schema_version and recorded_at as stored; `type` as stored;
/// `stream_id` the stored id made valid (each invalid byte or control character replaced by
/// U+FFFD, cut to StreamId::kMaxBytes), for logs and routing only; `data` the parsed stored data,
/// or null when it does not parse; `metadata` the parsed stored metadata when it is an object,
/// else an empty object. The exact stored text is in `decode_failure`.
/// The field is last, so that designated initializers written before it existed still compile.
struct RecordedEvent {
  StreamId stream_id;
  StreamVersion version = 0;
  Position position;
  EventId id;
  std::string type;
  std::int32_t schema_version = 1;
  /// The payload. Read from PostgreSQL, it holds the stored JSON text and parses it on first
  /// access (see lazy_json.hpp); text() gives that text without parsing.
  LazyJson data;
  /// The metadata, a JSON object; lazy like `data`.
  LazyJson metadata;
  std::chrono::system_clock::time_point recorded_at;
  /// Set when the stored row could not be decoded (see above); empty for every event that was.
  std::optional<DecodeFailure> decode_failure;

  /// True when the stored row could not be decoded: see decode_failure.
  [[nodiscard]] bool is_undecodable() const noexcept { return decode_failure.has_value(); }

  friend bool operator==(const RecordedEvent&, const RecordedEvent&) = default;
};

/// What an append wrote (or, for an exact re-send, had written the first time).
struct AppendResult {
  StreamId stream_id;
  StreamVersion first_version = 0;
  StreamVersion last_version = 0;
  /// Position of the last event written.
  Position position;

  friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

/// One stream's part of an atomic multi-stream append.
struct StreamAppend {
  StreamId stream_id;
  ExpectedVersion expected = ExpectedVersion::any();
  std::vector<NewEvent> events;
  /// Append even if the stream is deleted (its last event is a tombstone, see
  /// EventWriter::delete_stream): the events follow the tombstone and the stream is live again.
  /// Default false: an append to a deleted stream throws StreamDeletedError. The expected
  /// version is checked either way (the tombstone has a version of its own).
  bool reopen = false;
};

/// The reserved event type of the tombstone EventWriter::delete_stream appends: "$stream-deleted".
/// A stream whose last event has this type is deleted. An append may carry an event of this
/// type only as its single event (InvalidArgumentError otherwise).
inline constexpr std::string_view kStreamDeletedType = "$stream-deleted";

/// Retention rules of one stream, honoured by read_stream (EventWriter::set_stream_metadata):
/// events outside them are not returned, and the versions of the others stay as they are. The
/// global log, subscriptions and verification ignore them: nothing is removed from the log.
/// An empty field sets no rule; all empty, the stream has no rules.
struct StreamMetadata {
  /// Only the newest `max_count` events of the stream are read (by version). >= 1.
  std::optional<std::int64_t> max_count;
  /// Only events recorded at most this long before the read are read. >= 1 s.
  std::optional<std::chrono::seconds> max_age;
  /// Only events at this version or later are read. >= 1.
  std::optional<StreamVersion> truncate_before;

  /// True when no rule is set.
  [[nodiscard]] bool empty() const noexcept { return !max_count && !max_age && !truncate_before; }
  /// Throws InvalidArgumentError naming the first field out of range (see above).
  void validate() const;

  friend bool operator==(const StreamMetadata&, const StreamMetadata&) = default;
};

/// What a stream is now (EventReader::stream_state).
struct StreamState {
  /// The version of its last event, the tombstone included; empty when it has no events.
  /// The same as EventReader::stream_version().
  std::optional<StreamVersion> version;
  /// True when its last event is a tombstone (kStreamDeletedType): appends are refused with
  /// StreamDeletedError unless they ask to reopen (StreamAppend::reopen).
  bool deleted = false;
  /// Its retention rules (empty when none).
  StreamMetadata metadata;

  friend bool operator==(const StreamState&, const StreamState&) = default;
};

/// Limits every store enforces on appends, with the same errors.
struct AppendLimits {
  /// Largest serialized `data` of one event, in bytes. Default 1 MiB.
  std::size_t max_data_bytes = std::size_t{1} << 20;
  /// Largest serialized `metadata` of one event, in bytes. Default 1 MiB.
  std::size_t max_metadata_bytes = std::size_t{1} << 20;
  /// Most events in one append (summed over streams). Default 10,000.
  std::size_t max_events_per_append = 10'000;
};

}  // namespace annals
