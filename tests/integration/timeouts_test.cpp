// Timeouts everywhere: no call of the stores waits forever. A TCP proxy that stops forwarding
// without closing anything (a black hole: tests/support/tcp_proxy.hpp, stall()) stands for a
// hung middlebox, which TCP keepalives and tcp_user_timeout cannot see (the proxy's kernel
// keeps acknowledging); the stores' call timeout, enforced by their watchdog thread, ends the
// calls. Also: the pool's acquire timeout, the connect timeout, the server-side statement
// timeout of reads (and that appends do not get it), a user's own connection-string settings
// winning over the defaults, and invalid options refused by name.
//
// Timing: the asserted bounds are the configured timeout plus a generous margin (the machine
// is shared); measured times are printed. Waits for a condition use a deadline, never a sleep;
// the one sleep holds a lock for a duration under test.
#include <libpq-fe.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/anchor.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/postgres/verify.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "connection_string.hpp"
#include "eventually.hpp"
#include "tcp_proxy.hpp"
#include "test_database.hpp"
#include "watchdog.hpp"

namespace {

using annals::testing::elapsed_since;
using annals::testing::eventually;

using annals::EventId;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::testing::TcpProxy;
using annals::testing::test_database_url;
using annals::testing::unique_stream;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Slack on top of a configured timeout: scheduling on a loaded two-core machine, one connect
// attempt that may start just before the deadline.
constexpr milliseconds kMargin{3'000};

NewEvent event_with_id(int n) {
  return NewEvent{.id = EventId::generate(), .type = "Recorded", .data = {{"n", n}}};
}

// Runs `call`, which must throw; returns how long it took and records what it threw.
template <typename F>
milliseconds time_failure(F&& call, std::exception_ptr& thrown) {
  const auto start = Clock::now();
  try {
    call();
  } catch (...) {
    thrown = std::current_exception();
  }
  return elapsed_since(start);
}

// True when `thrown` is an UnavailableError but not an OutcomeUnknownError (a read's failure).
bool is_plain_unavailable(const std::exception_ptr& thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const annals::OutcomeUnknownError&) {
    return false;
  } catch (const annals::UnavailableError&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool is_unavailable_or_unknown(const std::exception_ptr& thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const annals::UnavailableError&) {  // OutcomeUnknownError included
    return true;
  } catch (...) {
    return false;
  }
}

std::string what_of(const std::exception_ptr& thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "(not an exception)";
  }
}

// A store on the proxy with short timeouts; no after-commit notifier (its connection is not
// the subject here).
std::unique_ptr<annals::EventStore> store_via(const TcpProxy& proxy, milliseconds call_timeout) {
  annals::postgres::PostgresEventStoreOptions options{
      .connection_string = proxy.url(), .pool_size = 4, .notify_on_append = false};
  options.connection_timeouts.connect_timeout = std::chrono::seconds(2);
  options.call_timeout = call_timeout;
  return annals::postgres::make_postgres_event_store(options);
}

annals::EventStore& direct_store() {
  static const auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
  return *store;
}

// Holds a lock on annals.events in a transaction of its own until release(): appends and reads
// of the store then wait on the server, observably (pg_locks).
class TableLock {
 public:
  explicit TableLock(const char* mode)
      : connection_(test_database_url()), tx_(std::make_unique<pqxx::work>(connection_)) {
    tx_->exec(std::string("LOCK TABLE annals.events IN ") + mode + " MODE");
  }
  void release() { tx_.reset(); }

  // Waits until another backend of this database waits for a lock.
  static bool someone_waits() {
    return eventually([] {
      pqxx::connection c(test_database_url());
      pqxx::nontransaction tx(c);
      return tx.exec(
                   "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                   "WHERE NOT l.granted AND a.datname = current_database()")[0][0]
                 .as<int>() > 0;
    });
  }

 private:
  pqxx::connection connection_;
  std::unique_ptr<pqxx::work> tx_;
};

// --- The black hole ---------------------------------------------------------------------------

TEST(TimeoutsTest, StalledAppendFailsWithinCallTimeoutAndItsResendIsStoredOnce) {
  TcpProxy proxy(test_database_url());
  constexpr milliseconds kCallTimeout{1'500};
  auto store = store_via(proxy, kCallTimeout);
  const StreamId stream(unique_stream("timeouts"));
  store->append(stream, ExpectedVersion::no_stream(), {event_with_id(0)});
  const auto event = event_with_id(1);

  proxy.stall();
  std::exception_ptr thrown;
  const auto took =
      time_failure([&] { store->append(stream, ExpectedVersion::exact(1), {event}); }, thrown);
  std::printf("[ measured ] append through a stalled proxy failed after %lld ms: %s\n",
              static_cast<long long>(took.count()), what_of(thrown).c_str());
  ASSERT_TRUE(thrown);
  EXPECT_TRUE(is_unavailable_or_unknown(thrown)) << what_of(thrown);
  EXPECT_GE(took, kCallTimeout - milliseconds(50));
  EXPECT_LT(took, kCallTimeout + kMargin);

  // The stalled request is still buffered in the proxy and may reach the server after
  // resume(), racing the re-send: either way the event is stored once.
  proxy.resume();
  const auto resent = store->append(stream, ExpectedVersion::exact(1), {event});
  EXPECT_EQ(resent.last_version, 2);
  const auto events = direct_store().read_stream(stream, {});
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[1].id, event.id);
  EXPECT_EQ(store->read_stream(stream, {}).size(), 2U);  // the same store reads again
}

TEST(TimeoutsTest, StalledReadFailsWithUnavailableWithinCallTimeoutAndResumes) {
  TcpProxy proxy(test_database_url());
  constexpr milliseconds kCallTimeout{1'000};
  auto store = store_via(proxy, kCallTimeout);
  const StreamId stream(unique_stream("timeouts"));
  store->append(stream, ExpectedVersion::no_stream(), {event_with_id(0)});

  proxy.stall();
  std::exception_ptr thrown;
  const auto took = time_failure([&] { (void)store->read_stream(stream, {}); }, thrown);
  std::printf("[ measured ] read through a stalled proxy failed after %lld ms: %s\n",
              static_cast<long long>(took.count()), what_of(thrown).c_str());
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_LT(took, kCallTimeout + kMargin);

  std::exception_ptr thrown_all;
  const auto took_all = time_failure([&] { (void)store->read_all({}); }, thrown_all);
  EXPECT_TRUE(is_plain_unavailable(thrown_all)) << what_of(thrown_all);
  EXPECT_LT(took_all, kCallTimeout + kMargin);

  proxy.resume();
  EXPECT_EQ(store->read_stream(stream, {}).size(), 1U);
  EXPECT_EQ(store->stream_version(stream), 1);
}

TEST(TimeoutsTest, ConnectThroughStalledProxyTimesOut) {
  TcpProxy proxy(test_database_url());
  proxy.stall();
  annals::postgres::PostgresEventStoreOptions options{.connection_string = proxy.url()};
  options.connection_timeouts.connect_timeout = std::chrono::seconds(2);
  std::exception_ptr thrown;
  const auto took =
      time_failure([&] { (void)annals::postgres::make_postgres_event_store(options); }, thrown);
  std::printf("[ measured ] connect through a stalled proxy failed after %lld ms: %s\n",
              static_cast<long long>(took.count()), what_of(thrown).c_str());
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_LT(took, std::chrono::seconds(2) + kMargin);
  proxy.resume();
  EXPECT_NO_THROW((void)annals::postgres::make_postgres_event_store(options));
}

TEST(TimeoutsTest, ProjectionStoreThroughStalledProxyFailsWithUnavailableAndResumes) {
  TcpProxy proxy(test_database_url());
  annals::projections::PostgresProjectionStoreOptions options{.connection_string = proxy.url()};
  options.connection_timeouts.connect_timeout = std::chrono::seconds(2);
  options.call_timeout = milliseconds(1'000);
  auto store = annals::projections::make_postgres_projection_store(options);
  (void)store->list();

  proxy.stall();
  std::exception_ptr thrown;
  const auto took = time_failure([&] { (void)store->list(); }, thrown);
  std::printf(
      "[ measured ] projection store call through a stalled proxy failed after %lld ms: "
      "%s\n",
      static_cast<long long>(took.count()), what_of(thrown).c_str());
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_LT(took, options.call_timeout + kMargin);
  proxy.resume();
  EXPECT_NO_THROW((void)store->list());
}

TEST(TimeoutsTest, SnapshotStoreThroughStalledProxyFailsWithUnavailable) {
  TcpProxy proxy(test_database_url());
  annals::postgres::PostgresSnapshotStoreOptions options{.connection_string = proxy.url()};
  options.connection_timeouts.connect_timeout = std::chrono::seconds(2);
  options.call_timeout = milliseconds(1'000);
  auto store = annals::postgres::make_postgres_snapshot_store(options);
  const StreamId stream(unique_stream("timeouts"));

  proxy.stall();
  std::exception_ptr thrown;
  const auto took = time_failure([&] { (void)store->load(stream); }, thrown);
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_LT(took, options.call_timeout + kMargin);
  proxy.resume();
  EXPECT_FALSE(store->load(stream).has_value());
}

TEST(TimeoutsTest, VerifyAndAnchorThroughStalledProxyFailWithinProgressTimeoutAndResume) {
  TcpProxy proxy(test_database_url());
  constexpr milliseconds kProgress{1'000};
  // Both open their repeatable-read snapshot first; the black hole starts there, after the
  // connection was opened.
  constexpr const char* kSnapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ";

  proxy.stall_on_request(kSnapshot);
  std::exception_ptr thrown;
  auto took = time_failure(
      [&] { (void)annals::postgres::verify(proxy.url(), {.progress_timeout = kProgress}); },
      thrown);
  std::printf("[ measured ] verify through a stalled proxy failed after %lld ms: %s\n",
              static_cast<long long>(took.count()), what_of(thrown).c_str());
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_GE(took, kProgress - milliseconds(50));
  EXPECT_LT(took, kProgress + kMargin);
  proxy.resume();
  EXPECT_NO_THROW((void)annals::postgres::verify(proxy.url(), {.progress_timeout = kProgress}));

  proxy.stall_on_request(kSnapshot);
  thrown = nullptr;
  took = time_failure(
      [&] { (void)annals::postgres::take_anchor(proxy.url(), {.progress_timeout = kProgress}); },
      thrown);
  std::printf("[ measured ] take_anchor through a stalled proxy failed after %lld ms: %s\n",
              static_cast<long long>(took.count()), what_of(thrown).c_str());
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_LT(took, kProgress + kMargin);
  proxy.resume();
  EXPECT_NO_THROW(
      (void)annals::postgres::take_anchor(proxy.url(), {.progress_timeout = kProgress}));

  // A negative timeout is refused by name.
  try {
    (void)annals::postgres::verify(test_database_url(), {.progress_timeout = milliseconds(-1)});
    ADD_FAILURE() << "a negative progress_timeout was accepted";
  } catch (const annals::InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("VerifyOptions::progress_timeout"), std::string::npos)
        << e.what();
  }
}

TEST(TimeoutsTest, MigrateThroughStalledProxyFailsWithinStepTimeoutAndResumes) {
  TcpProxy proxy(test_database_url());
  constexpr milliseconds kStep{1'000};
  // The first step takes the migration lock; the black hole starts there.
  proxy.stall_on_request("pg_advisory_xact_lock");
  std::exception_ptr thrown;
  const auto took = time_failure(
      [&] { (void)annals::postgres::migrate(proxy.url(), {.step_timeout = kStep}); }, thrown);
  std::printf("[ measured ] migrate through a stalled proxy failed after %lld ms: %s\n",
              static_cast<long long>(took.count()), what_of(thrown).c_str());
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_GE(took, kStep - milliseconds(50));
  EXPECT_LT(took, kStep + kMargin);
  proxy.resume();
  // The test database is migrated: nothing is pending, and migrate says so.
  EXPECT_TRUE(annals::postgres::migrate(proxy.url(), {.step_timeout = kStep}).empty());

  try {
    (void)annals::postgres::migrate(test_database_url(), {.step_timeout = milliseconds(-1)});
    ADD_FAILURE() << "a negative step_timeout was accepted";
  } catch (const annals::InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("MigrateOptions::step_timeout"), std::string::npos)
        << e.what();
  }
}

// --- The pool and the server's statement timeout --------------------------------------------

TEST(TimeoutsTest, ExhaustedPoolAcquireTimesOutWithUnavailable) {
  annals::postgres::PostgresEventStoreOptions options{.connection_string = test_database_url(),
                                                      .pool_size = 1};
  options.acquire_timeout = milliseconds(300);
  auto store = annals::postgres::make_postgres_event_store(options);
  const StreamId stream(unique_stream("timeouts"));

  std::future<std::vector<annals::RecordedEvent>> blocked;  // waited for after the lock ends
  TableLock lock("ACCESS EXCLUSIVE");
  blocked = std::async(std::launch::async, [&] { return store->read_stream(stream, {}); });
  ASSERT_TRUE(TableLock::someone_waits());  // the pool's one connection is taken

  std::exception_ptr thrown;
  const auto took = time_failure([&] { (void)store->head_position(); }, thrown);
  std::printf("[ measured ] acquire from an exhausted pool failed after %lld ms: %s\n",
              static_cast<long long>(took.count()), what_of(thrown).c_str());
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(300) + kMargin);

  lock.release();
  EXPECT_TRUE(blocked.get().empty());
  EXPECT_NO_THROW((void)store->head_position());
}

TEST(TimeoutsTest, SlowReadIsCancelledByTheServerButAppendsAreNot) {
  annals::postgres::PostgresEventStoreOptions options{.connection_string = test_database_url(),
                                                      .pool_size = 2};
  options.read_statement_timeout = milliseconds(300);
  options.call_timeout = milliseconds(20'000);
  auto store = annals::postgres::make_postgres_event_store(options);
  const StreamId stream(unique_stream("timeouts"));
  // A prepared connection in the pool: preparing the store's statements would itself wait for
  // the locks below (outside any statement timeout; the call timeout bounds it).
  (void)store->head_position();

  {
    TableLock lock("ACCESS EXCLUSIVE");
    std::exception_ptr thrown;
    const auto took = time_failure([&] { (void)store->read_all({}); }, thrown);
    std::printf("[ measured ] a blocked read was cancelled after %lld ms: %s\n",
                static_cast<long long>(took.count()), what_of(thrown).c_str());
    EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
    EXPECT_NE(what_of(thrown).find("statement timeout"), std::string::npos) << what_of(thrown);
    EXPECT_LT(took, options.call_timeout);  // the server's cancel, not the watchdog
  }

  // An append that waits on a lock for longer than the read timeout still commits. (The lock
  // is released before the future is waited for, also when an assertion fails.)
  std::future<annals::AppendResult> append;
  TableLock lock("EXCLUSIVE");
  append = std::async(std::launch::async, [&] {
    return store->append(stream, ExpectedVersion::no_stream(), {event_with_id(1)});
  });
  ASSERT_TRUE(TableLock::someone_waits());
  std::this_thread::sleep_for(3 * options.read_statement_timeout);  // the duration under test
  lock.release();
  EXPECT_EQ(append.get().last_version, 1);
  EXPECT_EQ(store->read_stream(stream, {}).size(), 1U);  // the cancelled read's connection works
}

// --- The watchdog alone (no server) ----------------------------------------------------------

using annals::postgres::detail::Watchdog;

// Two connected sockets, closed at the end of the scope.
struct SocketPair {
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  int fds[2] = {-1, -1};
};

TEST(WatchdogTest, ShutsDownASocketStillWaitingAtItsDeadline) {
  // A watchdog whose idle wait is far longer than the call's timeout: arming must wake it.
  Watchdog watchdog(milliseconds(60'000));
  SocketPair pair;
  const auto start = Clock::now();
  Watchdog::Call call(&watchdog, pair.fds[0], start + milliseconds(200));
  char byte = 0;
  const auto n = ::recv(pair.fds[0], &byte, 1, 0);  // nothing is ever sent: blocks until cut
  const auto took = elapsed_since(start);
  EXPECT_EQ(n, 0);  // end of file: the socket was shut down
  EXPECT_TRUE(call.disarm());
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, milliseconds(200) + kMargin);
}

TEST(WatchdogTest, ACallDisarmedInTimeLeavesItsSocketAlone) {
  Watchdog watchdog(milliseconds(50));
  SocketPair pair;
  {
    Watchdog::Call call(&watchdog, pair.fds[0], Clock::now() + milliseconds(100));
    EXPECT_FALSE(call.disarm());
  }
  // A later call with a deadline already passed is cut: the watchdog did wake up, and the
  // first socket still works.
  SocketPair other;
  Watchdog::Call late(&watchdog, other.fds[0], Clock::now());
  char byte = 0;
  EXPECT_EQ(::recv(other.fds[0], &byte, 1, 0), 0);
  EXPECT_TRUE(late.disarm());
  ASSERT_EQ(::send(pair.fds[1], "x", 1, MSG_NOSIGNAL), 1);
  EXPECT_EQ(::recv(pair.fds[0], &byte, 1, 0), 1);
  EXPECT_EQ(byte, 'x');
}

// --- Connection strings and options -----------------------------------------------------------

// The value libpq reads for `keyword` from `connection_string`; empty when unset.
std::string conninfo_value(const std::string& connection_string, const std::string& keyword) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(connection_string.c_str(), &error);
  PQfreemem(error);
  std::string value;
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (keyword == o->keyword && o->val != nullptr) value = o->val;
  }
  PQconninfoFree(options);
  return value;
}

TEST(TimeoutsTest, UserSetConnectTimeoutInUrlIsKept) {
  using annals::postgres::detail::with_timeouts;
  const annals::postgres::ConnectionTimeouts defaults;
  const auto url = with_timeouts(test_database_url() + "?connect_timeout=7", defaults);
  EXPECT_EQ(conninfo_value(url, "connect_timeout"), "7");
  EXPECT_EQ(conninfo_value(url, "keepalives_idle"), "10");
  EXPECT_EQ(conninfo_value(url, "keepalives_interval"), "5");
  EXPECT_EQ(conninfo_value(url, "keepalives_count"), "3");
  EXPECT_EQ(conninfo_value(url, "tcp_user_timeout"), "15000");
  const auto plain = with_timeouts("host=localhost tcp_user_timeout=999", defaults);
  EXPECT_EQ(conninfo_value(plain, "tcp_user_timeout"), "999");
  EXPECT_EQ(conninfo_value(plain, "connect_timeout"), "5");

  // End to end: the URL's connect_timeout=2 wins over an option of 60 s.
  TcpProxy proxy(test_database_url());
  proxy.stall();
  annals::postgres::PostgresEventStoreOptions options{.connection_string =
                                                          proxy.url() + "?connect_timeout=2"};
  options.connection_timeouts.connect_timeout = std::chrono::seconds(60);
  std::exception_ptr thrown;
  const auto took =
      time_failure([&] { (void)annals::postgres::make_postgres_event_store(options); }, thrown);
  EXPECT_TRUE(is_plain_unavailable(thrown)) << what_of(thrown);
  EXPECT_LT(took, std::chrono::seconds(2) + kMargin);
  proxy.resume();
}

TEST(TimeoutsTest, InvalidTimeoutOptionsAreRefusedNamingTheOption) {
  const auto refused_naming = [](const std::function<void()>& make, const std::string& name) {
    try {
      make();
    } catch (const annals::InvalidArgumentError& e) {
      return std::string(e.what()).find(name) != std::string::npos;
    }
    return false;
  };
  const std::string url = test_database_url();
  EXPECT_TRUE(refused_naming(
      [&] {
        annals::postgres::PostgresEventStoreOptions o{.connection_string = url};
        o.call_timeout = milliseconds(0);
        (void)annals::postgres::make_postgres_event_store(o);
      },
      "PostgresEventStoreOptions::call_timeout"));
  EXPECT_TRUE(refused_naming(
      [&] {
        annals::postgres::PostgresEventStoreOptions o{.connection_string = url};
        o.read_statement_timeout = milliseconds(-1);
        (void)annals::postgres::make_postgres_event_store(o);
      },
      "read_statement_timeout"));
  EXPECT_TRUE(refused_naming(
      [&] {
        annals::postgres::PostgresEventStoreOptions o{.connection_string = url};
        o.connection_timeouts.keepalives_count = -1;
        (void)annals::postgres::make_postgres_event_store(o);
      },
      "connection_timeouts::keepalives_count"));
  EXPECT_TRUE(refused_naming(
      [&] {
        annals::postgres::PostgresSnapshotStoreOptions o{.connection_string = url};
        o.acquire_timeout = milliseconds(-5);
        (void)annals::postgres::make_postgres_snapshot_store(o);
      },
      "PostgresSnapshotStoreOptions::acquire_timeout"));
  EXPECT_TRUE(refused_naming(
      [&] {
        annals::projections::PostgresProjectionStoreOptions o{.connection_string = url};
        o.connection_timeouts.tcp_user_timeout = milliseconds(-1);
        (void)annals::projections::make_postgres_projection_store(o);
      },
      "PostgresProjectionStoreOptions::connection_timeouts::tcp_user_timeout"));
}

}  // namespace
