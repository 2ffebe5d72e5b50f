// The command bus: one line of wiring per command type, then send() loads the aggregate,
// decides, appends and returns the append result (versions and position).
//
//   annals::CommandBus bus(*store, registry, {.snapshots = snapshots.get()});
//   bus.handle<Account>(&OpenAccount::account_id);     // stream "account-<account_id>"
//   bus.handle<Account>(&Withdraw::account_id);
//   const auto result = bus.send(Withdraw{"42", 30}, {.command_id = request_id});
//
// What send() does for you:
// - Conflicts (another writer appended first) are retried by reloading and deciding again, at
//   most `max_attempts` times in all, with jittered exponential backoff. DomainErrors are never
//   retried.
// - Idempotency: event ids derive from the command id, so a re-sent command appends nothing
//   and returns the original result (ARCHITECTURE decision 4). A re-send of one of the
//   aggregate's recent commands is recognised from the loaded or cached events, without
//   deciding again and without a round trip. A command type that is a FingerprintedCommand
//   (a stable kCommandName and a JSON form) also has its fingerprint stored with its events,
//   and a command id reused for a different command of such a type is refused with
//   IdempotencyError instead of being answered with the first command's result (issue 11).
//   See docs/framework.md.
// - Metadata: command, correlation and causation ids, the actor and extra keys go into every
//   event (CommandContext).
// - Snapshots by policy, per aggregate type (configure<D>()); a failing snapshot store never
//   fails a command.
// - A bounded in-memory cache of recently used aggregates, so that a command usually costs one
//   round trip (the append). A cached state is only a guess: the append's expected version
//   proves it current, and a domain error or a no-op decided on a cached state is confirmed on
//   the stored state before it is reported.
//
// Thread safety: configure() and handle() are set-up calls: make them before the first send()
// and from one thread. send() may then be called from any number of threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/decider.hpp"
#include "annals/framework/detail/aggregate_cache.hpp"
#include "annals/framework/detail/command_identity.hpp"
#include "annals/framework/detail/resend.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/metadata.hpp"
#include "annals/framework/repository.hpp"

namespace annals {

struct CommandBusOptions {
  /// Snapshot store for every aggregate type; null (the default): no snapshots. Not owned;
  /// must outlive the bus.
  SnapshotStore* snapshots = nullptr;
  /// Snapshot policy of aggregate types not given their own with configure(). Default: never.
  SnapshotPolicy snapshot_policy;
  /// Most decide-and-append attempts per command when appends conflict (or the store is
  /// unavailable), the first included. Default 5. Values < 1 mean 1.
  int max_attempts = 5;
  /// Backoff before retry n (n >= 1): a uniformly random wait in [0, min(max_retry_backoff,
  /// retry_backoff * 2^(n-1))] ("full jitter"). Defaults 2 ms and 100 ms.
  std::chrono::milliseconds retry_backoff{2};
  std::chrono::milliseconds max_retry_backoff{100};
  /// Aggregates kept in memory per aggregate type (least recently used evicted first). 0
  /// disables the cache: every command then loads its aggregate (snapshot + tail). Default
  /// 1,024.
  std::size_t cache_capacity = 1024;
};

namespace detail {

/// The text of an aggregate id member: strings as they are, integers in decimal, or any type
/// with a to_string() method (EventId, ...).
template <typename Id>
std::string id_text(const Id& id) {
  if constexpr (std::is_convertible_v<const Id&, std::string_view>) {
    return std::string(std::string_view(id));
  } else if constexpr (std::is_integral_v<Id>) {
    return std::to_string(id);
  } else if constexpr (requires {
                         { id.to_string() } -> std::convertible_to<std::string>;
                       }) {
    return id.to_string();
  } else {
    static_assert(kAlwaysFalse<Id>,
                  "annals: an aggregate id member must be a string, an integer, or have a "
                  "to_string() method");
  }
}

/// Sleeps before retry `retry` (1 = the first retry) with full jitter.
void backoff(int retry, std::chrono::milliseconds base, std::chrono::milliseconds cap);
void log_conflict_retry(const ConcurrencyError& error, int attempt, int max_attempts) noexcept;
void log_unavailable_retry(const StreamId& stream, const UnavailableError& error, int attempt,
                           int max_attempts) noexcept;
[[noreturn]] void throw_no_handler(const std::type_info& command);
/// Throws OutcomeUnknownError for a command given up after `last` when an earlier attempt's
/// outcome was unknown.
[[noreturn]] void throw_outcome_unknown(const StreamId& stream, const UnavailableError& last);
[[noreturn]] void throw_duplicate_handler(const std::type_info& command);

}  // namespace detail

/// Routes commands to deciders and runs them against the store.
class CommandBus {
 public:
  /// `store`, `registry` and `options.snapshots` must outlive the bus.
  CommandBus(EventStore& store, const EventRegistry& registry, CommandBusOptions options = {})
      : store_(store), registry_(registry), options_(std::move(options)) {
    if (options_.max_attempts < 1) options_.max_attempts = 1;
  }
  CommandBus(const CommandBus&) = delete;
  CommandBus& operator=(const CommandBus&) = delete;
  ~CommandBus() = default;

  /// Sets the repository options (snapshot store and policy) of aggregate type D, replacing
  /// the bus-wide defaults. Set-up only. Throws: as Repository's constructor.
  template <typename D>
  void configure(RepositoryOptions options) {
    handler_for<D>().configure(std::move(options));
  }

  /// Routes commands of type C to decider D; `aggregate_id` names the member holding the
  /// aggregate's id, so the stream is "<D::kCategory>-<command.*aggregate_id>". Set-up only.
  /// Throws: InvalidArgumentError (C already has a handler; D's events are not registered; an
  /// upcaster chain is invalid).
  template <typename D, typename C, typename Id>
  void handle(Id C::*aggregate_id) {
    static_assert(detail::check_decider<D>());
    static_assert(detail::Decides<D, C>,
                  "annals: CommandBus::handle<D>(&C::id): D has no `static decide(const State&, "
                  "const C&)` for this command type C");
    auto& handler = handler_for<D>();
    if (routes_.contains(typeid(C))) detail::throw_duplicate_handler(typeid(C));
    routes_.emplace(typeid(C),
                    [&handler, aggregate_id](const void* command, const CommandContext& context) {
                      const C& typed = *static_cast<const C*>(command);
                      return handler.send(typed, detail::id_text(typed.*aggregate_id), context);
                    });
  }

  /// Runs `command`: load (or take from the cache), decide, append. Returns what the append
  /// wrote, or, for a re-sent command id, what the original send wrote. A command whose
  /// decision is empty writes nothing and returns {first_version = version + 1, last_version
  /// = version, position = start}.
  /// Throws: NotFoundError (no handler for C), the decider's DomainError (never retried),
  /// ConcurrencyError (still conflicting after max_attempts), UnavailableError /
  /// OutcomeUnknownError (after max_attempts; sending the same command id again is safe),
  /// InvalidArgumentError, IdempotencyError (the command id was used for another stream, or,
  /// for a FingerprintedCommand, for a different command: another type or other fields),
  /// UnknownEventTypeError, CorruptionError.
  /// A re-send of one of the aggregate's last 32 commands is answered from the loaded or
  /// cached events without calling decide (Repository::find_command); an older one is decided
  /// again and its original result found through the store.
  /// Cost: usually one round trip (cached aggregate); loading adds a snapshot read and one
  /// read per 1,000 events (with a caller's command id and a snapshot, one backward read the
  /// first time); a retry adds a read; a re-send of a recent command on a cached aggregate
  /// costs none, except that a FingerprintedCommand's re-send reads the original's first event
  /// (one round trip) to compare fingerprints.
  template <typename C>
  AppendResult send(const C& command, const CommandContext& context = {}) {
    const auto route = routes_.find(typeid(C));
    if (route == routes_.end()) detail::throw_no_handler(typeid(C));
    return route->second(&command, context);
  }

 private:
  struct HandlerBase {
    HandlerBase() = default;
    HandlerBase(const HandlerBase&) = delete;
    HandlerBase& operator=(const HandlerBase&) = delete;
    virtual ~HandlerBase() = default;
  };

  // Everything the bus does for one aggregate type.
  template <typename D>
  class Handler final : public HandlerBase {
   public:
    using Event = typename D::Event;

    Handler(EventStore& store, const EventRegistry& registry, const CommandBusOptions& options)
        : store_(store),
          registry_(registry),
          bus_options_(options),
          cache_(options.cache_capacity) {
      configure({.snapshots = options.snapshots, .snapshot_policy = options.snapshot_policy});
    }

    void configure(RepositoryOptions options) {
      repository_.emplace(store_, registry_, std::move(options));
    }

    template <typename C>
    AppendResult send(const C& command, const std::string& id, const CommandContext& context) {
      auto& repository = *repository_;
      validate_command_context(context);  // refuse bad metadata before deciding anything
      const detail::ResolvedContext resolved(context, detail::fingerprint_of(command));
      const bool caller_id = resolved.has_caller_id();
      const StreamId stream = repository.stream_of(id);

      std::optional<Aggregate<D>> aggregate = cache_.get(stream);
      bool stored_state = !aggregate.has_value();  // decided on state just read from the store
      if (!aggregate) aggregate.emplace(repository.load_stream(stream));

      const int max_attempts = bus_options_.max_attempts;
      // An attempt ended in OutcomeUnknownError and no later one got an authoritative answer:
      // the command may be written, so giving up must not say "nothing written" (issue 11).
      bool in_doubt = false;
      for (int attempt = 1;; ++attempt) {
        if (caller_id) {
          // A re-send of a command this state has seen: its original result, not decided again
          // (decision 4). Checked again after every read of newer events.
          if (auto original = repository.find_command(*aggregate, resolved.command_id())) {
            cache_.put(*aggregate);
            return same_command(*original, resolved);
          }
        }
        std::vector<Event> decided;
        try {
          decided = detail::decide<D>(aggregate->state(), command);
        } catch (const DomainError&) {
          // A refusal must hold on the stored state, and a re-send must get its original
          // result, not the refusal its own events now cause.
          if (!stored_state) {
            stored_state = true;
            if (repository.refresh(*aggregate) > 0) {
              --attempt;  // not a write attempt
              continue;
            }
          }
          cache_.put(*aggregate);
          if (auto original = original_of(*aggregate, resolved, caller_id)) {
            return same_command(*original, resolved);
          }
          throw;
        }
        if (decided.empty()) {
          if (!stored_state) {
            stored_state = true;
            if (repository.refresh(*aggregate) > 0) {
              --attempt;
              continue;
            }
          }
          cache_.put(*aggregate);
          if (auto original = original_of(*aggregate, resolved, caller_id)) {
            return same_command(*original, resolved);
          }
          return AppendResult{stream, aggregate->version() + 1, aggregate->version(),
                              Position::start()};
        }

        Aggregate<D> working = *aggregate;
        working.record(std::move(decided));
        const StreamVersion next_version = working.version() + 1;
        for (;;) {  // the same events again after an infrastructure failure
          try {
            auto result = repository.save(working, resolved.context());
            cache_.put(std::move(working));
            // Written elsewhere than where this decision would go: the store recognised the
            // command's ids, a re-send (save reloaded the aggregate).
            if (caller_id && result.first_version != next_version) {
              return same_command(result, resolved);
            }
            return result;
          } catch (const ConcurrencyError& conflict) {
            in_doubt = false;  // the store saw the ids and none were stored
            cache_.erase(stream);
            if (attempt >= max_attempts) throw;
            detail::log_conflict_retry(conflict, attempt, max_attempts);
            detail::backoff(attempt, bus_options_.retry_backoff, bus_options_.max_retry_backoff);
            if (conflict.actual().value_or(0) < aggregate->version()) {
              // Our state claims more events than the stream has: a snapshot ahead of its
              // stream (restored events, kept snapshots). Rebuild from the events alone.
              aggregate.emplace(repository.reload_without_snapshot(stream));
            } else {
              repository.refresh(*aggregate);
            }
            stored_state = true;
            break;
          } catch (const UnavailableError& unavailable) {
            // Nothing was written, or (OutcomeUnknownError) maybe everything: saving the same
            // events with the same ids again is an exact re-send either way.
            cache_.erase(stream);
            const bool unknown = dynamic_cast<const OutcomeUnknownError*>(&unavailable) != nullptr;
            in_doubt = in_doubt || unknown;
            if (attempt >= max_attempts) {
              if (in_doubt && !unknown) detail::throw_outcome_unknown(stream, unavailable);
              throw;
            }
            detail::log_unavailable_retry(stream, unavailable, attempt, max_attempts);
            detail::backoff(attempt, bus_options_.retry_backoff, bus_options_.max_retry_backoff);
            ++attempt;
          }
        }
      }
    }

   private:
    // `original`, the stored result of the command id of `context`, unless the command id was
    // used for a different command (FingerprintedCommand): then IdempotencyError.
    AppendResult same_command(const AppendResult& original,
                              const detail::ResolvedContext& resolved) {
      detail::check_same_command(store_, original, resolved.command_id(),
                                 resolved.context().fingerprint);
      return original;
    }

    // The original result when this command id's events are already in the stream, for a
    // command find_command did not know (older than its window). Only a caller-supplied command
    // id can be a re-send; an empty stream, or a state that has seen every command of its
    // stream, holds no other original.
    std::optional<AppendResult> original_of(const Aggregate<D>& aggregate,
                                            const detail::ResolvedContext& resolved,
                                            bool caller_id) {
      if (!caller_id || aggregate.version() == 0 || Repository<D>::knows_every_command(aggregate)) {
        return std::nullopt;
      }
      return detail::find_original_result(store_, aggregate.stream_id(), resolved.command_id(),
                                          /*stream_exists=*/true);
    }

    EventStore& store_;
    const EventRegistry& registry_;
    const CommandBusOptions& bus_options_;
    std::optional<Repository<D>> repository_;
    detail::AggregateCache<Aggregate<D>> cache_;
  };

  template <typename D>
  Handler<D>& handler_for() {
    auto found = handlers_.find(typeid(D));
    if (found == handlers_.end()) {
      found =
          handlers_.emplace(typeid(D), std::make_unique<Handler<D>>(store_, registry_, options_))
              .first;
    }
    return static_cast<Handler<D>&>(*found->second);
  }

  using Route = std::function<AppendResult(const void* command, const CommandContext& context)>;

  EventStore& store_;
  const EventRegistry& registry_;
  CommandBusOptions options_;
  std::unordered_map<std::type_index, std::unique_ptr<HandlerBase>> handlers_;
  std::unordered_map<std::type_index, Route> routes_;
};

}  // namespace annals
