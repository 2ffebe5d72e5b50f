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
//   IdempotencyError instead of being answered with the first command's result.
//   FingerprintedCommand is declared in metadata.hpp; see docs/framework.md.
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
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/framework/decider.hpp"
#include "annals/framework/detail/command_handler.hpp"
#include "annals/framework/detail/command_route.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/metadata.hpp"
#include "annals/framework/repository.hpp"

namespace annals {

/// How a CommandBus snapshots, retries and caches; every field has a default.
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

/// Routes commands to deciders and runs them against the store. The steps of send() are in
/// detail/command_handler.hpp.
/// Thread safety: configure() and handle() are set-up calls (one thread, before the first
/// send()); send() may be called from any number of threads at once.
class CommandBus {
 public:
  /// Requires: `store`, `registry` and `options.snapshots` outlive the bus. Throws: nothing
  /// (bad_alloc aside). Cost: none; each aggregate type's handler is made by its first
  /// configure() or handle().
  CommandBus(EventStore& store, const EventRegistry& registry, CommandBusOptions options = {})
      : store_(store), registry_(registry), options_(std::move(options)) {
    if (options_.max_attempts < 1) options_.max_attempts = 1;
  }
  CommandBus(const CommandBus&) = delete;
  CommandBus& operator=(const CommandBus&) = delete;
  ~CommandBus() = default;

  /// Sets the repository options (snapshot store and policy) of aggregate type D, replacing
  /// the bus-wide defaults. Thread safety: set-up only. Throws: as Repository's constructor.
  /// Cost: no round trip.
  template <typename D>
  void configure(RepositoryOptions options) {
    handler_for<D>().configure(std::move(options));
  }

  /// Routes commands of type C to decider D; `aggregate_id` names the member holding the
  /// aggregate's id (a string, an integer, or a type with to_string()), so the stream is
  /// "<D::kCategory>-<command.*aggregate_id>". Thread safety: set-up only.
  /// Throws: InvalidArgumentError (C already has a handler; D's events are not registered; an
  /// upcaster chain is invalid). Cost: no round trip.
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
  /// Thread safety: any number of threads at once, after set-up.
  template <typename C>
  AppendResult send(const C& command, const CommandContext& context = {}) {
    const auto route = routes_.find(typeid(C));
    if (route == routes_.end()) detail::throw_no_handler(typeid(C));
    return route->second(&command, context);
  }

 private:
  template <typename D>
  detail::CommandHandler<D>& handler_for() {
    auto found = handlers_.find(typeid(D));
    if (found == handlers_.end()) {
      auto handler = std::make_unique<detail::CommandHandler<D>>(
          store_, registry_,
          RepositoryOptions{.snapshots = options_.snapshots,
                            .snapshot_policy = options_.snapshot_policy},
          detail::RetrySchedule{.max_attempts = options_.max_attempts,
                                .retry_backoff = options_.retry_backoff,
                                .max_retry_backoff = options_.max_retry_backoff},
          options_.cache_capacity);
      found = handlers_.emplace(typeid(D), std::move(handler)).first;
    }
    return static_cast<detail::CommandHandler<D>&>(*found->second);
  }

  using Route = std::function<AppendResult(const void* command, const CommandContext& context)>;

  EventStore& store_;
  const EventRegistry& registry_;
  CommandBusOptions options_;
  std::unordered_map<std::type_index, std::unique_ptr<detail::CommandHandlerBase>> handlers_;
  std::unordered_map<std::type_index, Route> routes_;
};

}  // namespace annals
