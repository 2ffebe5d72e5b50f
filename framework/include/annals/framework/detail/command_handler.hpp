// What the command bus does for one aggregate type: the steps of CommandBus::send (resolve the
// command id, load, answer a recent re-send, decide, confirm a write-less decision, append,
// retry). Internal to annals::framework (CommandBus); not part of the public API.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/framework/decider.hpp"
#include "annals/framework/detail/aggregate_cache.hpp"
#include "annals/framework/detail/command_identity.hpp"
#include "annals/framework/detail/resend.hpp"
#include "annals/framework/detail/send_attempts.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/metadata.hpp"
#include "annals/framework/repository.hpp"

namespace annals::detail {

/// What the bus keeps its handlers as, whatever their aggregate type.
class CommandHandlerBase {
 public:
  CommandHandlerBase() = default;
  CommandHandlerBase(const CommandHandlerBase&) = delete;
  CommandHandlerBase& operator=(const CommandHandlerBase&) = delete;
  virtual ~CommandHandlerBase() = default;
};

/// Runs commands against aggregates of decider D: a Repository<D>, a cache of recently used
/// aggregates and the retry schedule.
/// Thread safety: configure() is a set-up call; send() may be called from any number of threads
/// at once.
template <typename D>
class CommandHandler final : public CommandHandlerBase {
 public:
  using Event = typename D::Event;

  /// `store`, `registry` and `repository.snapshots` must outlive the handler.
  /// Throws: as Repository's constructor.
  CommandHandler(EventStore& store, const EventRegistry& registry, RepositoryOptions repository,
                 RetrySchedule retry, std::size_t cache_capacity)
      : store_(store), registry_(registry), retry_(retry), cache_(cache_capacity) {
    configure(std::move(repository));
  }

  /// Replaces the repository options. Throws: as Repository's constructor.
  void configure(RepositoryOptions options) {
    repository_.emplace(store_, registry_, std::move(options));
  }

  /// CommandBus::send of `command` to aggregate `id` (see there for what it returns, throws
  /// and costs).
  template <typename C>
  AppendResult send(const C& command, const std::string& id, const CommandContext& context) {
    validate_command_context(context);  // refuse bad metadata before deciding anything
    const ResolvedContext resolved(context, detail::fingerprint_of(command));
    Working working = load(repository_->stream_of(id));
    SendAttempts attempts(retry_);
    for (;;) {  // once per decision; again after newer events were read
      if (auto original = recent_original(working, resolved)) return *original;
      std::vector<Event> decided;
      try {
        decided = detail::decide<D>(working.aggregate.state(), command);
      } catch (const DomainError&) {
        // A refusal must hold on the stored state, and a re-send must get its original
        // result, not the refusal its own events now cause.
        if (refreshed_cached_state(working)) continue;
        if (auto original = original_of_unwritten(working, resolved)) return *original;
        throw;
      }
      if (decided.empty()) {
        if (refreshed_cached_state(working)) continue;
        if (auto original = original_of_unwritten(working, resolved)) return *original;
        return nothing_written(working.aggregate);
      }
      if (auto result = append(working, std::move(decided), resolved, attempts)) return *result;
    }
  }

 private:
  // The aggregate a send decides on, and whether its state was just read from the store (a
  // cached state is only a guess until an append's expected version proves it current).
  struct Working {
    Aggregate<D> aggregate;
    bool stored = false;
  };

  // The cached aggregate of `stream`, else the stored one (snapshot + tail).
  Working load(const StreamId& stream) {
    if (auto cached = cache_.get(stream)) return Working{std::move(*cached), false};
    return Working{repository_->load_stream(stream), true};
  }

  // A re-send of a command this state has seen: its original result, not decided again
  // (decision 4). Asked again after every read of newer events.
  std::optional<AppendResult> recent_original(Working& working, const ResolvedContext& resolved) {
    if (!resolved.has_caller_id()) return std::nullopt;
    auto original = repository_->find_command(working.aggregate, resolved.command_id());
    if (!original) return std::nullopt;
    cache_.put(working.aggregate);
    return same_command(*original, resolved);
  }

  // A decision that writes nothing (a refusal, no events) made on a cached state must hold on
  // the stored state: applies the events stored after it. True when there were some (decide
  // again); false when the state is the stored one.
  bool refreshed_cached_state(Working& working) {
    if (working.stored) return false;
    working.stored = true;
    return repository_->refresh(working.aggregate) > 0;
  }

  // For a decision that writes nothing on the stored state: the original result when the
  // command is a re-send the ring did not know (its own events caused that decision), else
  // empty. Caches the state either way.
  std::optional<AppendResult> original_of_unwritten(const Working& working,
                                                    const ResolvedContext& resolved) {
    cache_.put(working.aggregate);
    auto original = original_in_store(working.aggregate, resolved);
    if (!original) return std::nullopt;
    return same_command(*original, resolved);
  }

  // What an empty decision returns: nothing written after the aggregate's version.
  static AppendResult nothing_written(const Aggregate<D>& aggregate) {
    return AppendResult{aggregate.stream_id(), aggregate.version() + 1, aggregate.version(),
                        Position::start()};
  }

  // Appends the decided events to the working state, again (the same events) while the store
  // is unavailable. Empty after a conflict worth retrying: the working state then holds the
  // newer events, to decide again.
  std::optional<AppendResult> append(Working& working, std::vector<Event> decided,
                                     const ResolvedContext& resolved, SendAttempts& attempts) {
    Aggregate<D> next = working.aggregate;
    next.record(std::move(decided));
    const StreamVersion next_version = next.version() + 1;
    for (;;) {
      try {
        auto result = repository_->save(next, resolved.context());
        cache_.put(std::move(next));
        // Written elsewhere than where this decision would go: the store recognised the
        // command's ids, a re-send (save reloaded the aggregate).
        if (resolved.has_caller_id() && result.first_version != next_version) {
          return same_command(result, resolved);
        }
        return result;
      } catch (const ConcurrencyError& conflict) {
        cache_.erase(working.aggregate.stream_id());
        if (!attempts.retry_after_conflict(conflict)) throw;
        catch_up(working, conflict);
        return std::nullopt;
      } catch (const UnavailableError& unavailable) {
        // Nothing was written, or (OutcomeUnknownError) maybe everything: saving the same
        // events with the same ids again is an exact re-send either way.
        cache_.erase(working.aggregate.stream_id());
        if (!attempts.retry_after_unavailable(working.aggregate.stream_id(), unavailable)) throw;
      }
    }
  }

  // After a conflict: the working state reads the events another writer appended.
  void catch_up(Working& working, const ConcurrencyError& conflict) {
    if (conflict.actual().value_or(0) < working.aggregate.version()) {
      // Our state claims more events than the stream has: a snapshot ahead of its stream
      // (restored events, kept snapshots). Rebuild from the events alone.
      working.aggregate = repository_->reload_without_snapshot(working.aggregate.stream_id());
    } else {
      repository_->refresh(working.aggregate);
    }
    working.stored = true;
  }

  // `original`, the stored result of the resolved command id, unless the command id was used
  // for a different command (FingerprintedCommand): then IdempotencyError.
  AppendResult same_command(const AppendResult& original, const ResolvedContext& resolved) {
    check_same_command(store_, original, resolved.command_id(), resolved.context().fingerprint);
    return original;
  }

  // The original result when this command id's events are already in the stream, for a
  // command find_command did not know (older than its window). Only a caller-supplied command
  // id can be a re-send; an empty stream, or a state that has seen every command of its
  // stream, holds no other original.
  std::optional<AppendResult> original_in_store(const Aggregate<D>& aggregate,
                                                const ResolvedContext& resolved) {
    if (!resolved.has_caller_id() || aggregate.version() == 0 ||
        Repository<D>::knows_every_command(aggregate)) {
      return std::nullopt;
    }
    return find_original_result(store_, aggregate.stream_id(), resolved.command_id(),
                                /*stream_exists=*/true);
  }

  EventStore& store_;
  const EventRegistry& registry_;
  RetrySchedule retry_;
  std::optional<Repository<D>> repository_;
  AggregateCache<Aggregate<D>> cache_;
};

}  // namespace annals::detail
