// The PostgreSQL event store (the product's store) and its schema migrations.
//
//   annals::postgres::migrate(url);   // once, or `annals migrate`
//   auto store = annals::postgres::make_postgres_event_store({.connection_string = url});
//
// Appends are one round trip: a prepared call of the `annals.append_events` SQL function that
// checks the expected version, checks idempotency, inserts, chains the tamper-evidence hash and
// notifies (ARCHITECTURE decisions 2-4, 6, 8); a single-event append is one prepared
// statement, and concurrent single-event appends share a transaction (group commit, see the
// options below and docs/schema.md). The global log is read in (transaction id,
// sequence) order below the oldest running transaction, so readers never skip an event that
// commits late (decision 5). Reads hand rows to the decoder as they arrive from the server, so
// decoding a page overlaps the server producing it.
//
// Thread safety: the store is fully thread-safe; it keeps a pool of connections and replaces
// broken ones.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/metrics.hpp"
#include "annals/postgres/connection_options.hpp"

namespace annals::postgres {

struct PostgresEventStoreOptions {
  /// libpq connection string: "postgresql://user@host:port/db" or "host=... dbname=...".
  std::string connection_string;
  /// Most connections the store opens for appends and reads, together (one more sends
  /// notifications after commits; subscriptions open one more each for LISTEN). Opened lazily.
  /// Default 16.
  std::size_t pool_size = 16;
  /// Limits on appends. Default: 1 MiB data and metadata, 10,000 events per append.
  AppendLimits limits;
  /// How many times a call is retried on a fresh connection after the connection broke.
  /// Appends are retried with the same event ids, so a retry is an exact re-send. Default 2.
  int max_retries_on_broken_connection = 2;
  /// Group commit. Single-event appends (one event, one stream) that arrive while
  /// `group_commit_in_flight` of them are already at the server wait for the next free slot
  /// and then go together: one round trip, one transaction, one commit for the whole group,
  /// which is where a busy server spends most of a small append's cost. Each append in a group
  /// is still its own statement with its own expected-version and event-id checks, and its
  /// own result: one that conflicts writes nothing and gets its ConcurrencyError, while the
  /// others commit. Appends of a group commit together and share a transaction id (so their
  /// positions are adjacent in the global log). With one writer, or fewer writers than
  /// `group_commit_in_flight`, nothing waits. At most this many appends (and 1 MiB of event
  /// payload) per group; 1 turns group commit off. Default 64.
  std::size_t group_commit_max_appends = 64;
  /// How many groups (a lone append counts as a group of one) may be at the server at once
  /// before new single-event appends wait to be grouped; capped at `pool_size`. Fewer means
  /// larger groups under load. Default 4.
  std::size_t group_commit_in_flight = 4;
  /// Whether appends wake subscribers with NOTIFY annals_events (ARCHITECTURE decision 6).
  /// Off, subscribers see new events at their poll interval. Default on.
  bool notify_on_append = true;
  /// Where the NOTIFY is sent. Default (false): after the append committed, from one notifier
  /// connection per store, coalescing the appends made meanwhile into one notification; if the
  /// process dies between a commit and its notification, subscribers find the event at their
  /// next poll. True: inside the append's own transaction, so the notification is delivered
  /// exactly at commit even if the process dies; but PostgreSQL serializes the commits of
  /// notifying transactions (a database-wide lock held until the commit is flushed), which
  /// caps concurrent appends at about one commit per disk flush (docs/performance.md).
  bool notify_in_transaction = false;
  /// A subscription logs a warning (spdlog logger "annals") when the oldest running
  /// transaction of the cluster has been open longer than this: it holds back every reader of
  /// the global log (see read_horizon()). Checked at most every 10 s per subscription, on its
  /// LISTEN connection. Zero disables the check. Default 10 s.
  std::chrono::milliseconds horizon_warning_after{10'000};
  /// Connect timeout, TCP keepalives and tcp_user_timeout of every connection the store opens
  /// (the pool, the after-commit notifier, each subscription's LISTEN connection), added to
  /// `connection_string` unless it sets them itself. Defaults: connection_options.hpp.
  ConnectionTimeouts connection_timeouts;
  /// How long a call waits for a pooled connection while all `pool_size` are in use before it
  /// fails with UnavailableError (OutcomeUnknownError for an append already in doubt). Must be
  /// positive. Default 5 s.
  std::chrono::milliseconds acquire_timeout{5'000};
  /// The longest one call (an append with all its retries, a read, stream_version,
  /// head_position) may wait for the server, measured from its start. It also bounds each
  /// call of the store's connections outside the pool: the after-commit notifier's session
  /// setup and NOTIFY, and a LISTEN connection's LISTEN and read-horizon query (a call cut
  /// short counts as a lost connection there: reconnected with backoff, polling meanwhile). A call
  /// still waiting then has its connection shut down by the store's watchdog thread and fails: an
  /// append with OutcomeUnknownError when its request may have reached the server (retry it with
  /// the same event ids), otherwise UnavailableError. This is what bounds a call when the network
  /// path acknowledges but never answers (a hung proxy), which TCP timeouts cannot see. Must be
  /// positive. Default 40 s: longer than `read_statement_timeout`, so a merely slow read gets
  /// the server's own cancellation (and keeps its connection) first.
  std::chrono::milliseconds call_timeout{40'000};
  /// Server-side statement_timeout of read_stream and read_all (set for each read statement
  /// alone, in its round trip): the server cancels a read running longer, and the read fails
  /// with UnavailableError. Appends do not get it (they are bounded by `call_timeout`). Zero:
  /// the session's own statement_timeout applies. Default 30 s.
  std::chrono::milliseconds read_statement_timeout{30'000};
  /// The after-commit notifier's connection and the LISTEN connection of each watch() signal:
  /// after the connection was lost (or a call on it passed `call_timeout`), the wait before
  /// the second attempt to open a new one; it doubles with each failure, with jitter (between
  /// half and all of it), up to max_reconnect_backoff. Meanwhile subscribers and runners poll.
  /// (A subscription's LISTEN connection uses its SubscriptionOptions' fields of the same
  /// names.) Must be positive. Default 100 ms.
  std::chrono::milliseconds initial_reconnect_backoff{100};
  /// The longest wait between those attempts; must be at least initial_reconnect_backoff.
  /// Default 5 s.
  std::chrono::milliseconds max_reconnect_backoff{5'000};
  /// A hot standby (a streaming replica of the same cluster) to read from, as a libpq
  /// connection string; empty (the default): everything goes to `connection_string`. When
  /// set, read_stream, read_all and head_position, and so subscriptions and projection
  /// runners, read from the standby, with their own pool of up to `pool_size` connections;
  /// appends, stream_version, stream_state and stream metadata stay on the primary. The
  /// global log keeps its never-skip guarantee there: the standby's snapshot holds back every
  /// transaction the primary still runs. A standby lags: an event appended a moment ago may
  /// not be read yet (wait_for_position() waits until it is). Subscriptions still LISTEN on
  /// the primary (a standby receives no notifications) and, woken, wait until the standby has
  /// replayed the primary's WAL up to then (docs/scaling.md). Checked at open: the standby
  /// must be reachable and its schema migrated.
  std::string standby_connection_string;
  /// After a notification, the longest a subscription (or watch()'s signal) waits for the
  /// standby to replay up to the primary's WAL position of that moment before it reads
  /// anyway (what is not there yet comes at the next notification or poll). Only with a
  /// standby. Must be positive. Default 5 s.
  std::chrono::milliseconds standby_replay_timeout{5'000};
  /// Session-level work: the LISTEN connection of each subscription and watch(), and the
  /// after-commit notifier (which sets synchronous_commit for its session). Empty (the
  /// default): `connection_string`. Behind a transaction-mode pooler such as PgBouncer, point
  /// `connection_string` at the pooler and this at the server itself (docs/operations.md,
  /// "Connection poolers"): LISTEN through a transaction pooler receives nothing.
  std::string session_connection_string;
  /// Prepare the store's statements once per connection (true, the default) or send each
  /// call's SQL as an unnamed statement, parsed anew every time (false). Named prepared
  /// statements live in a server session; a transaction-mode pooler (PgBouncer 1.18, as in
  /// Debian 12) hands each transaction to any server connection, where they do not exist, so
  /// turn this off behind one. Costs the server a parse and plan per call.
  bool prepare_statements = true;
  /// Where appends (outcomes, events, retries, group sizes, latency), reads and subscriptions
  /// report their metrics (label store="postgres"; see annals/eventstore/metrics.hpp and
  /// docs/observability.md). Default null: no metrics, no cost.
  std::shared_ptr<MetricsSink> metrics;
};

/// What currently holds back readers of the global log (ARCHITECTURE decision 5).
///
/// Readers only see transactions older than the oldest transaction still running anywhere in
/// the cluster, so one long open transaction (in any database, annals' or not) delays every
/// subscription until it ends.
struct ReadHorizon {
  /// The oldest running transaction that has a transaction id, if any.
  struct Blocker {
    int pid = 0;
    std::string database;
    std::string state;  ///< pg_stat_activity.state, e.g. "idle in transaction"
    std::chrono::milliseconds transaction_age{0};
    std::string query;  ///< its current or last statement, cut to 200 characters
  };
  std::optional<Blocker> oldest;
};

/// Reports the oldest running transaction, for monitoring and `annals` diagnostics.
/// `timeout`: the longest the query may wait for the server (a server or proxy that accepts
/// the connection and never answers); connecting is bounded by the connection string's
/// connect_timeout (default: annals/postgres/connection_options.hpp). Must be positive.
/// Throws: UnavailableError (also when `timeout` passed), InvalidArgumentError (`timeout`).
/// Cost: one connection and one query; a watchdog thread for the call.
[[nodiscard]] ReadHorizon read_horizon(
    const std::string& connection_string,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Opens a store. Connects once to check that the schema is migrated and that the stored
/// transaction ids are not ahead of the server's (a sign of a restore into a new cluster).
/// Starts the store's watchdog thread (one per store; it enforces `call_timeout`).
/// Throws: InvalidArgumentError (a timeout option out of range, named in the message),
/// UnavailableError (cannot connect), NotFoundError (schema not migrated),
/// CorruptionError (stored transaction ids ahead of the server's).
[[nodiscard]] std::unique_ptr<EventStore> make_postgres_event_store(
    PostgresEventStoreOptions options);

/// Waits until reads of `store` see `position` in the global log (read_all returns the event at
/// `position` and everything before it; read_stream then shows it too): read-your-writes for a
/// store that reads from a hot standby, with a position returned by an append on the primary
/// (AppendResult::position). Without a standby it waits only while an older transaction is
/// still open. Polls the read side's settled horizon, starting at once and backing off to
/// every 10 ms.
/// Requires: `store` was made by make_postgres_event_store.
/// Throws: PositionNotVisibleError (an UnavailableError) when `timeout` passed first;
/// InvalidArgumentError (another kind of store, or a negative timeout); UnavailableError.
/// Thread safety: as the store's reads. Cost: one short query per poll, on the read pool.
void wait_for_position(EventStore& store, const Position& position,
                       std::chrono::milliseconds timeout);

/// Whether the log holds a committed event at or after `position`, settled or not. An event
/// whose transaction committed while an older one is still open lies above head_position() (and
/// read_all() does not return it yet) until that one ends, although its append has returned
/// the position. A read API that takes positions from its clients uses this to tell a position
/// some append returned (wait for it) from one none did (refuse it at once).
/// Requires: `store` was made by make_postgres_event_store.
/// Throws: InvalidArgumentError (another kind of store); UnavailableError.
/// Thread safety: any thread. Cost: one indexed probe on the primary.
[[nodiscard]] bool log_reaches(EventStore& store, const Position& position);

/// One applied or pending migration.
struct MigrationStatus {
  std::string name;  ///< "0001_create_event_store"
  bool applied = false;
};

/// The database roles a production deployment runs with (docs/security.md). Each field is a
/// role name (an identifier, quoted by the server; any text is safe).
struct RoleLayout {
  /// Owns the schema and every object of the store; migrations run as this role. Created
  /// NOLOGIN when missing: log in as a member of it (e.g. the role that runs migrate).
  std::string owner = "annals_owner";
  /// The application: appends (it cannot choose transaction ids, times or hashes), reads,
  /// snapshots, projection checkpoints and its read-model tables. Created LOGIN when missing.
  std::string writer = "annals_writer";
  /// Read-only: events, streams, projection status. Created LOGIN when missing.
  std::string reader = "annals_reader";
  /// The reader plus what `annals verify` and `annals anchor` need. Created LOGIN when missing.
  std::string auditor = "annals_auditor";
  /// The schema where the writer may create read-model tables (granted USAGE and CREATE);
  /// empty = grant none.
  std::string read_model_schema = "public";

  friend bool operator==(const RoleLayout&, const RoleLayout&) = default;
};

/// Options of migrate().
struct MigrateOptions {
  /// When set, migrate also creates the roles that do not exist yet, hands every object of the
  /// store to the owner and grants each role exactly its privileges (recorded in
  /// annals.role_layout). Later migrate runs, with or without it, run migrations as the
  /// recorded owner and grant the new objects. Requires a superuser, or a role with CREATEROLE
  /// that owns the store. Default: unset (no roles are created or changed).
  std::optional<RoleLayout> roles;
  /// The longest one step of migrate may take: applying one migration (its transaction,
  /// waiting for a concurrent run's migration lock included), configuring the roles, or
  /// refreshing their grants. A step still running then has its connection shut down and
  /// migrate fails with UnavailableError; that step rolls back, or, if its COMMIT was under
  /// way, may have committed: run migrate again, which applies only what is still pending.
  /// Zero: no bound (the connection timeouts only). Must not be negative. Default 30 min: a
  /// migration may scan or rewrite a large table.
  std::chrono::milliseconds step_timeout{30LL * 60 * 1000};
  /// When set, migrate also partitions annals.events by ranges of this many global positions
  /// (declarative partitioning; docs/scaling.md, "Partitioned log"), on a fresh store or on
  /// one that holds events (its table becomes the first partition, after one scan under an
  /// exclusive lock), and creates the next ranges ahead. On a store already partitioned it
  /// only records the size for the ranges created from now on. Must be at least 1.
  /// Default: unset (the log stays, or becomes nothing but, what it is).
  std::optional<std::int64_t> partitioned_log;
};

/// One range partition of a partitioned log (list_log_partitions).
struct LogPartition {
  std::string name;            ///< "events_from_1001", a table of schema annals (or the archive)
  std::int64_t from_position;  ///< first global position of its range
  std::int64_t to_position;    ///< one past its last global position
  std::string archived_in;     ///< schema it was archived to; empty while attached
  std::string tablespace;      ///< its tablespace; empty for the database's default

  friend bool operator==(const LogPartition&, const LogPartition&) = default;
};

/// Creates the range partitions a partitioned log needs ahead of its current position (as
/// `annals partitions --ensure`; run it from a scheduler, it is cheap when nothing is due).
/// With `ahead`, first records that many empty ranges to keep from now on (at least 1; the
/// default is 2): before a bulk import of E events, ask for E / partition size + 2 so that no
/// event lands in the default partition. Returns how many it created; 0 on a log that is not
/// partitioned.
/// Throws: UnavailableError, NotFoundError (not migrated), InvalidArgumentError (ahead < 1),
/// PermissionDeniedError (not run as the store's owner or a member of it).
/// Cost: one connection, a few statements; each new partition briefly takes SHARE UPDATE
/// EXCLUSIVE on annals.events (appends and reads go on).
int ensure_log_partitions(const std::string& connection_string,
                          std::optional<int> ahead = std::nullopt);

/// The range partitions of a partitioned log in position order (empty when not partitioned).
/// Throws: UnavailableError, NotFoundError (not migrated), PermissionDeniedError.
[[nodiscard]] std::vector<LogPartition> list_log_partitions(const std::string& connection_string);

/// Detaches a range partition of a partitioned log and moves it to schema `archive_schema`
/// (created when missing, which needs CREATE on the database: under a role layout create it
/// beforehand, owned by the store's owner), where triggers keep it read-only; returns its
/// number of events.
/// Its event ids stay claimed. Reads, verify and anchors then see only the attached log.
/// Throws: InvalidArgumentError (not an attached range partition, the range still takes new
/// events, the schema is annals, or a stream still ends in it: the message names one);
/// UnavailableError; PermissionDeniedError (not the owner).
/// Cost: one scan of the partition; ACCESS EXCLUSIVE on annals.events for that time.
std::int64_t archive_log_partition(const std::string& connection_string,
                                   const std::string& partition, const std::string& archive_schema);

/// Attaches an archived partition again at its recorded range; returns its number of events.
/// Throws: InvalidArgumentError (not an archived partition); UnavailableError;
/// PermissionDeniedError.
/// Cost: one scan of the partition to prove its range.
std::int64_t restore_log_partition(const std::string& connection_string,
                                   const std::string& partition);

/// Applies the pending numbered migrations of `sql/` in order, each in its own transaction,
/// under an advisory lock so concurrent runs are safe. Returns the names applied now.
/// When a role layout is recorded, migrations run as its owner and the roles' grants are
/// brought up to date afterwards.
/// Throws: UnavailableError (also when a step passed options.step_timeout); InternalError (a
/// migration failed; it was rolled back); InvalidArgumentError (a negative step_timeout);
/// InvalidArgumentError (options.roles names one role twice, or a writer, reader or auditor
/// that is a superuser or a member of the owner); PermissionDeniedError (the connection's role
/// may not create roles or hand objects to the owner, or is not a member of the recorded owner
/// while migrations are pending).
/// Cost: one connection; a few statements per pending migration; a watchdog thread for the
/// call's duration (options.step_timeout).
std::vector<std::string> migrate(const std::string& connection_string,
                                 const MigrateOptions& options = {});

/// Lists every migration the library knows and whether it is applied.
[[nodiscard]] std::vector<MigrationStatus> migration_status(const std::string& connection_string);

}  // namespace annals::postgres
