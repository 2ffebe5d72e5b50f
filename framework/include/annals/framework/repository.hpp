// Repository: loads aggregates (latest usable snapshot + replay of the tail), saves their new
// events with optimistic concurrency, takes snapshots by policy, and loads past states for
// auditors (as of a version or a recorded time), which are computed from the events alone.
//
//   annals::Repository<Account> accounts(*store, registry, {.snapshots = snapshots.get(),
//                                        .snapshot_policy = annals::SnapshotPolicy::every(100)});
//   auto account = accounts.load("42");          // stream "account-42"
//   account.execute(Withdraw{"42", 30});          // Account::decide, then evolve
//   accounts.save(account, {.command_id = id});   // append, expected version = loaded version
//
// Most services use the CommandBus, which does this (plus conflict retries) per command.
//
// Thread safety: a Repository may be used from any number of threads at once; an Aggregate is
// a value and belongs to one thread at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/decider.hpp"
#include "annals/framework/detail/command_identity.hpp"
#include "annals/framework/detail/recent_commands.hpp"
#include "annals/framework/detail/resend.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/metadata.hpp"

namespace annals {

/// What a snapshot policy decides on, after a successful save.
struct SnapshotCandidate {
  const StreamId& stream;
  /// The stream version a snapshot taken now would hold.
  StreamVersion version;
  /// Events since the snapshot the aggregate was loaded from (or the last one taken); all of
  /// them when there was none.
  StreamVersion events_since_snapshot;
  /// The events just appended.
  std::span<const NewEvent> appended;
};

/// When to take a snapshot of an aggregate type. Default: never.
class SnapshotPolicy {
 public:
  using Predicate = std::function<bool(const SnapshotCandidate&)>;

  /// Never (the default).
  SnapshotPolicy() = default;
  [[nodiscard]] static SnapshotPolicy never() { return {}; }
  /// After a save that leaves `events` or more events since the last snapshot.
  /// Throws: InvalidArgumentError if events < 1.
  [[nodiscard]] static SnapshotPolicy every(StreamVersion events);
  /// After a save for which `predicate` returns true. Throws: InvalidArgumentError if empty.
  [[nodiscard]] static SnapshotPolicy when(Predicate predicate);

  [[nodiscard]] bool is_never() const noexcept { return !predicate_; }
  [[nodiscard]] bool should_snapshot(const SnapshotCandidate& candidate) const {
    return predicate_ && predicate_(candidate);
  }

 private:
  explicit SnapshotPolicy(Predicate predicate) : predicate_(std::move(predicate)) {}
  Predicate predicate_;
};

struct RepositoryOptions {
  /// Where snapshots are read and written; null (the default): no snapshots. Not owned; must
  /// outlive the repository. Loading reads a snapshot whenever a store is set; writing follows
  /// `snapshot_policy`.
  SnapshotStore* snapshots = nullptr;
  /// When to take a snapshot after a save. Default: never. Requires a State with JSON
  /// conversions (JsonConvertible) unless never.
  SnapshotPolicy snapshot_policy;
  /// Events read per round trip while replaying. Default 1,000.
  std::size_t read_page_size = 1000;
};

namespace detail {
/// Logging of snapshot trouble (spdlog logger "annals"): warn, never throw (decision 10).
void log_snapshot_load_failure(const StreamId& stream, const char* why) noexcept;
void log_snapshot_ignored(const StreamId& stream, const char* why) noexcept;
void log_snapshot_write_failure(const StreamId& stream, StreamVersion version,
                                const char* why) noexcept;
void log_snapshot_remove_failure(const StreamId& stream, const char* why) noexcept;

/// Throws InvalidArgumentError naming an event type of a decider that is not registered.
[[noreturn]] void throw_unregistered(std::string_view category, std::string_view type);
/// Throws InvalidArgumentError: a snapshot policy without JSON conversions for the State.
[[noreturn]] void throw_state_not_json(std::string_view category);
}  // namespace detail

template <typename D>
class Repository;

/// One aggregate: its state, the stream version it was loaded at, and pending (decided, not
/// yet saved) events. A value; copy it freely.
/// Thread safety: one thread at a time per object, like any value.
template <typename D>
class Aggregate {
 public:
  using State = typename D::State;
  using Event = typename D::Event;

  /// A new aggregate: no events, default State.
  explicit Aggregate(StreamId stream) : stream_(std::move(stream)) {}

  [[nodiscard]] const StreamId& stream_id() const noexcept { return stream_; }
  /// The state including pending events.
  [[nodiscard]] const State& state() const noexcept { return state_; }
  /// The stream version of the last stored event applied (0: none), excluding pending events.
  [[nodiscard]] StreamVersion version() const noexcept { return version_; }
  /// Events decided but not saved yet.
  [[nodiscard]] const std::vector<Event>& pending() const noexcept { return pending_; }

  /// Decides `command` on state() with D::decide and records the events it returns as
  /// pending. Throws: whatever decide throws (a DomainError subclass); then nothing changed.
  template <typename C>
  void execute(const C& command) {
    record(detail::decide<D>(state_, command));
  }

  /// Records decided events as pending, evolving the state. Strong guarantee.
  void record(std::vector<Event> events) {
    State next = state_;
    for (const auto& e : events) next = detail::evolve<D>(std::move(next), e);
    state_ = std::move(next);
    pending_.reserve(pending_.size() + events.size());
    for (auto& e : events) pending_.push_back(std::move(e));
  }

 private:
  friend class Repository<D>;

  StreamId stream_;
  State state_{};
  StreamVersion version_ = 0;
  std::vector<Event> pending_;
  // The version of the snapshot loaded or last taken (0: none).
  StreamVersion snapshot_version_ = 0;
  // A snapshot was ignored (another schema version, unreadable, ahead of the stream): the next
  // save replaces it whatever the policy says.
  bool replace_snapshot_ = false;
  // The last commands of the stream this aggregate has seen, to answer re-sends (find_command).
  detail::RecentCommands recent_;
};

/// Loads and saves aggregates of decider D.
/// Thread safety: every method may be called from any number of threads at once (a Repository
/// changes nothing after construction); the Aggregate passed in belongs to the caller.
template <typename D>
class Repository {
  static_assert(detail::check_decider<D>());

 public:
  using State = typename D::State;
  using Event = typename D::Event;

  /// Requires: every event of D registered in `registry`. `store`, `registry` and
  /// `options.snapshots` must outlive the repository.
  /// Throws: InvalidArgumentError (an event not registered, an invalid upcaster chain, a
  /// snapshot policy for a State without JSON conversions).
  Repository(EventStore& store, const EventRegistry& registry, RepositoryOptions options = {})
      : store_(store), registry_(registry), options_(std::move(options)) {
    registry_.validate();
    check_registered(std::type_identity<Event>{});
    if constexpr (!JsonConvertible<State>) {
      if (options_.snapshots != nullptr && !options_.snapshot_policy.is_never()) {
        detail::throw_state_not_json(D::kCategory);
      }
    }
    if (options_.read_page_size == 0) options_.read_page_size = 1;
  }

  /// The stream id of aggregate `id` ("<kCategory>-<id>"). Throws: InvalidArgumentError.
  [[nodiscard]] StreamId stream_of(std::string_view id) const { return detail::stream_of<D>(id); }

  /// The aggregate's current state: the latest usable snapshot plus the events after it. A
  /// stream without events loads as a new aggregate (version 0). A snapshot of another schema
  /// version, unreadable, failing to load, or that the store says no longer matches the events
  /// (SnapshotStore::lookup: another history, edited in place, unbound) is ignored (logged)
  /// and replaced at the next save.
  /// A deleted stream (its last event is a tombstone, EventWriter::delete_stream) does not load:
  /// StreamDeletedError, here and in every load and refresh that reaches the tombstone.
  /// Throws: InvalidArgumentError (bad id), StreamDeletedError, UnknownEventTypeError,
  /// CorruptionError, UnavailableError. Cost: one snapshot read (if a store is set) + one read
  /// per page.
  [[nodiscard]] Aggregate<D> load(std::string_view id) { return load_stream(stream_of(id)); }
  [[nodiscard]] Aggregate<D> load_stream(const StreamId& stream) {
    Aggregate<D> aggregate(stream);
    restore_snapshot(aggregate);
    replay(aggregate, kLatest, std::nullopt);
    return aggregate;
  }

  /// The state after event `version` (or the latest, if the stream is shorter): for audits.
  /// Computed from the events alone, never from a snapshot (a snapshot is a cache, never a
  /// source of truth), so what it returns does not depend on the snapshot store.
  /// Throws: InvalidArgumentError (version < 0), as load().
  /// Cost: one read per `read_page_size` events up to `version`.
  [[nodiscard]] Aggregate<D> load_at_version(std::string_view id, StreamVersion version) {
    return load_stream_at_version(stream_of(id), version);
  }
  [[nodiscard]] Aggregate<D> load_stream_at_version(const StreamId& stream, StreamVersion version) {
    if (version < 0) {
      throw InvalidArgumentError("load_at_version: version " + std::to_string(version) +
                                 " is negative");
    }
    Aggregate<D> aggregate(stream);
    replay(aggregate, version, std::nullopt);
    return aggregate;
  }

  /// The state after the events recorded at or before `time`: the longest prefix of the stream
  /// whose recorded times are <= time (recorded times come from the store's clock). Computed
  /// from the events alone, from the first event, never from a snapshot.
  /// Throws: as load(). Cost: reads up to the first event after `time`.
  [[nodiscard]] Aggregate<D> load_as_of(std::string_view id,
                                        std::chrono::system_clock::time_point time) {
    Aggregate<D> aggregate(stream_of(id));
    replay(aggregate, kLatest, time);
    return aggregate;
  }

  /// The original result of command `command_id` if the aggregate has seen its events: a
  /// re-send, to be answered without deciding it again (ARCHITECTURE decision 4). The aggregate
  /// remembers the last RecentCommands::kCapacity (32) commands of its stream up to its
  /// version, from the events it loaded and saved. Loaded from a snapshot, it knows only the
  /// commands after the snapshot: the first time a command is not found among them, up to
  /// kResendLookback (256) events before the snapshot are read back (once per load).
  /// Empty: not among them. That is a new command, or one older than that window; the store
  /// still recognises the event ids of an older one when they are appended again (save).
  /// Throws: UnavailableError (the read back). Cost: none; one read after a load from a
  /// snapshot, the first time (see above).
  [[nodiscard]] std::optional<AppendResult> find_command(Aggregate<D>& aggregate,
                                                         std::string_view command_id) {
    const EventId first = derive_event_id(command_id, 0);
    auto& recent = aggregate.recent_;
    const detail::CommandRecord* found = recent.find(first);
    if (found == nullptr && recent.known_after() > 0 && !recent.full() && !recent.looked_back()) {
      look_back(aggregate);
      found = recent.find(first);
    }
    if (found == nullptr) return std::nullopt;
    return AppendResult{aggregate.stream_, found->first_version, found->last_version,
                        found->position};
  }

  /// True when the aggregate has seen every command of its stream up to its version (it
  /// replayed the whole stream, or read back to its start, and the stream has at most 32
  /// commands): then a command that find_command does not know is not stored up to that
  /// version. Throws: nothing. Cost: none.
  [[nodiscard]] static bool knows_every_command(const Aggregate<D>& aggregate) noexcept {
    return aggregate.recent_.known_after() == 0;
  }

  /// Applies the events stored after the aggregate's version (another writer's). Returns how
  /// many were applied. Requires: no pending events.
  /// Throws: InvalidArgumentError (pending events), UnknownEventTypeError, CorruptionError,
  /// UnavailableError; the aggregate then holds the events applied before the failure.
  /// Cost: one read per page.
  std::size_t refresh(Aggregate<D>& aggregate) {
    if (!aggregate.pending_.empty()) {
      throw InvalidArgumentError("refresh: the aggregate of stream \"" + aggregate.stream_.value() +
                                 "\" has pending events");
    }
    const auto before = aggregate.version_;
    replay(aggregate, kLatest, std::nullopt);
    return static_cast<std::size_t>(aggregate.version_ - before);
  }

  /// Reloads from the events alone and deletes the stream's snapshot (a newer snapshot is
  /// never replaced by an older one, so a bad one must go): for a snapshot that turned out to
  /// be ahead of its stream. The next save takes a new snapshot if a policy is set.
  /// Throws: as load() (a failing snapshot removal is logged, never thrown).
  /// Cost: one snapshot removal (if a store is set) + one read per page.
  [[nodiscard]] Aggregate<D> reload_without_snapshot(const StreamId& stream) {
    if (options_.snapshots != nullptr) {
      detail::log_snapshot_ignored(stream, "it is ahead of its stream");
      try {
        options_.snapshots->remove(stream);
      } catch (const std::exception& e) {
        detail::log_snapshot_remove_failure(stream, e.what());
      }
    }
    Aggregate<D> aggregate(stream);
    replay(aggregate, kLatest, std::nullopt);
    aggregate.replace_snapshot_ = true;
    return aggregate;
  }

  /// Appends the pending events with the loaded version as expected version (exact, or "no
  /// stream" for a new aggregate). Event ids derive from the command id (a fresh one when the
  /// context has none) and every event carries the context's metadata. Afterwards the
  /// aggregate is at the new version with no pending events, and a snapshot is taken if the
  /// policy says so (a failing snapshot write is logged, never thrown).
  ///
  /// Idempotent: when the command id's events are already stored (a re-send), returns the
  /// original result, writes nothing, and reloads the aggregate.
  /// No pending events: writes nothing; returns {first_version = version() + 1, last_version =
  /// version(), position = start}.
  /// Throws: ConcurrencyError (the stream moved since load; the aggregate is unchanged, still
  /// pending), IdempotencyError, InvalidArgumentError, UnavailableError/OutcomeUnknownError
  /// (unchanged; saving again is safe: the event ids are the same).
  /// Cost: one round trip (+1 when a snapshot is taken; +2 on a re-send).
  AppendResult save(Aggregate<D>& aggregate, const CommandContext& context = {}) {
    if (aggregate.pending_.empty()) {
      return AppendResult{aggregate.stream_, aggregate.version_ + 1, aggregate.version_,
                          Position::start()};
    }
    // The context as given when it has a command id (the bus always gives one): no copy.
    const detail::ResolvedContext resolved(context);
    auto metadata = command_metadata(resolved.context());
    std::vector<NewEvent> events;
    const std::size_t count = aggregate.pending_.size();
    events.reserve(count);
    for (std::size_t k = 0; k < count; ++k) {
      events.push_back(std::visit(
          [&](const auto& e) {
            using E = std::remove_cvref_t<decltype(e)>;
            return NewEvent{.id = derive_event_id(resolved.command_id(), k),
                            .type = std::string(E::kTypeName),
                            .schema_version = static_cast<std::int32_t>(E::kSchemaVersion),
                            .data = registry_.encode_data(e, aggregate.stream_),
                            .metadata = k + 1 < count ? metadata : std::move(metadata)};
          },
          aggregate.pending_[k]));
    }
    const auto expected = aggregate.version_ == 0 ? ExpectedVersion::no_stream()
                                                  : ExpectedVersion::exact(aggregate.version_);
    std::optional<AppendResult> appended;
    try {
      appended.emplace(store_.append(aggregate.stream_, expected, events));
    } catch (const IdempotencyError&) {
      // Some of the command's ids are stored: a re-send whose decision now has more events
      // than the original. Or the command id was used for another stream: rethrow.
      auto original =
          detail::find_original_result(store_, aggregate.stream_, resolved.command_id());
      if (!original) throw;
      aggregate = load_stream(aggregate.stream_);
      return *original;
    }
    if (appended->first_version != aggregate.version_ + 1) {
      // The store recognised the ids: a re-send (decision 4). Nothing was written.
      auto original = detail::complete_original_result(store_, *appended, resolved.command_id());
      aggregate = load_stream(aggregate.stream_);
      return original;
    }
    aggregate.version_ = appended->last_version;
    aggregate.pending_.clear();
    const auto hash = detail::command_id_hash(resolved.command_id());
    for (StreamVersion v = appended->first_version; v <= appended->last_version; ++v) {
      const auto k = static_cast<std::size_t>(v - appended->first_version);
      aggregate.recent_.add_newer(hash, *events[k].id, v, appended->position);
    }
    maybe_snapshot(aggregate, events);
    return *std::move(appended);
  }

 private:
  static constexpr StreamVersion kLatest = std::numeric_limits<StreamVersion>::max();
  // Events read back before a snapshot by find_command.
  static constexpr std::size_t kResendLookback = 256;

  template <typename... Es>
  void check_registered(std::type_identity<std::variant<Es...>>) const {
    (check_registered_one<Es>(), ...);
  }
  template <typename E>
  void check_registered_one() const {
    static_assert(EventType<E>,
                  "annals: every event of a decider must satisfy annals::EventType (kTypeName, "
                  "kSchemaVersion, ==, JSON conversions)");
    if (!registry_.template contains<E>()) detail::throw_unregistered(D::kCategory, E::kTypeName);
  }

  void restore_snapshot(Aggregate<D>& aggregate) {
    if (options_.snapshots == nullptr) return;
    if constexpr (JsonConvertible<State>) {
      SnapshotLookup found;
      try {
        found = options_.snapshots->lookup(aggregate.stream_);
      } catch (const std::exception& e) {
        detail::log_snapshot_load_failure(aggregate.stream_, e.what());
        return;  // a cache miss: replay everything
      }
      if (!found.snapshot) return;
      if (found.ignored != SnapshotIgnored::kNone) {
        // It no longer matches the events; the store has logged and counted it.
        aggregate.replace_snapshot_ = true;
        return;
      }
      auto& snapshot = found.snapshot;
      if (snapshot->schema_version != detail::snapshot_version<D>()) {
        detail::log_snapshot_ignored(aggregate.stream_, "it has another schema version");
        aggregate.replace_snapshot_ = true;
        return;
      }
      try {
        aggregate.state_ = snapshot->state.template get<State>();
      } catch (const nlohmann::json::exception& e) {
        detail::log_snapshot_ignored(aggregate.stream_, e.what());
        aggregate.state_ = State{};
        aggregate.replace_snapshot_ = true;
        return;
      }
      aggregate.version_ = snapshot->version;
      aggregate.snapshot_version_ = snapshot->version;
      aggregate.recent_.start_after(snapshot->version);
    }
  }

  // Reads back (once) the events before the snapshot the aggregate was loaded from, recording
  // their commands as far as there is room (find_command).
  void look_back(Aggregate<D>& aggregate) {
    auto& recent = aggregate.recent_;
    recent.set_looked_back();
    const StreamVersion from = recent.known_after();
    if (from <= 0) return;
    const auto events = store_.read_stream(
        aggregate.stream_,
        {.direction = ReadDirection::kBackward, .from = from, .max_count = kResendLookback});
    for (const auto& event : events) {
      if (!recent.add_older(detail::command_hash_of(event), event.id, event.version,
                            event.position)) {
        return;
      }
    }
  }

  // Applies the stored events after the aggregate's version, up to `until` (and recorded at or
  // before `as_of`). Throws StreamDeletedError when the last event applied is a tombstone (the
  // stream is deleted at that point); a tombstone followed by events (a reopened stream) is
  // passed over: it is the store's, not the aggregate's.
  void replay(Aggregate<D>& aggregate, StreamVersion until,
              std::optional<std::chrono::system_clock::time_point> as_of) {
    if (replay_to_end(aggregate, until, as_of)) {
      throw StreamDeletedError(aggregate.stream_, aggregate.version_);
    }
  }

  // replay(); returns true when the last event applied is a tombstone.
  bool replay_to_end(Aggregate<D>& aggregate, StreamVersion until,
                     std::optional<std::chrono::system_clock::time_point> as_of) {
    std::vector<Event> decoded;
    bool deleted = false;
    for (;;) {
      const StreamVersion from = aggregate.version_ + 1;
      if (from > until) return deleted;
      const auto wanted = std::min<StreamVersion>(
          until - from + 1, static_cast<StreamVersion>(options_.read_page_size));
      const auto events = store_.read_stream(
          aggregate.stream_, {.from = from, .max_count = static_cast<std::size_t>(wanted)});
      for (const auto& event : events) {
        if (as_of && event.recorded_at > *as_of) return deleted;
        deleted = event.type == kStreamDeletedType && !event.is_undecodable();
        if (!deleted) {
          decoded.clear();
          registry_.decode(event, decoded);
          for (const auto& e : decoded) {
            aggregate.state_ = detail::evolve<D>(std::move(aggregate.state_), e);
          }
        }
        aggregate.version_ = event.version;
        aggregate.recent_.add_newer(detail::command_hash_of(event), event.id, event.version,
                                    event.position);
      }
      if (static_cast<StreamVersion>(events.size()) < wanted) return deleted;
    }
  }

  void maybe_snapshot(Aggregate<D>& aggregate, std::span<const NewEvent> appended) {
    if (options_.snapshots == nullptr || options_.snapshot_policy.is_never()) return;
    if constexpr (JsonConvertible<State>) {
      const SnapshotCandidate candidate{aggregate.stream_, aggregate.version_,
                                        aggregate.version_ - aggregate.snapshot_version_, appended};
      if (!aggregate.replace_snapshot_ && !options_.snapshot_policy.should_snapshot(candidate)) {
        return;
      }
      // Whether or not the write succeeds, wait for the policy before trying again: a failing
      // snapshot store must not add a round trip to every command.
      aggregate.snapshot_version_ = aggregate.version_;
      aggregate.replace_snapshot_ = false;
      try {
        options_.snapshots->save(Snapshot{.stream_id = aggregate.stream_,
                                          .version = aggregate.version_,
                                          .schema_version = detail::snapshot_version<D>(),
                                          .state = nlohmann::json(aggregate.state_)});
      } catch (const std::exception& e) {
        detail::log_snapshot_write_failure(aggregate.stream_, aggregate.version_, e.what());
      }
    }
  }

  EventStore& store_;
  const EventRegistry& registry_;
  RepositoryOptions options_;
};

}  // namespace annals
