// Test support: a TCP proxy between a client under test and PostgreSQL that breaks connections
// at exact points of the conversation, so that "the connection broke after the request was
// sent" is a deterministic event rather than a race (honest outcomes).
//
//   annals::testing::TcpProxy proxy(annals::testing::test_database_url());
//   auto store = make_postgres_event_store({.connection_string = proxy.url()});
//   proxy.cut_on_request(stream.value(), TcpProxy::Cut::kAfterServerReplies);
//   EXPECT_THROW(store->append(stream, ...), annals::OutcomeUnknownError);
//   proxy.heal();
//
// It listens on 127.0.0.1 (an ephemeral port) and forwards every accepted connection to the
// server of the given URL, on one thread with poll(). A cut rule fires on the first
// client->server chunk whose bytes contain a pattern (a unique stream id, say, which only the
// Bind message of an append carries); then every proxied connection is closed and, until
// heal(), new connections are accepted and closed at once (the client sees the server go away
// while it connects).
//
// A black hole: stall() stops forwarding in both directions without closing anything (what
// each side sends stays buffered in the proxy's sockets, and TCP keeps acknowledging it, as a
// hung middlebox does), until resume(). Keepalives and tcp_user_timeout cannot see such a
// stall; only a client-side deadline ends a call waiting behind it.
//
//   proxy.stall();
//   EXPECT_THROW(store->read_all({}), annals::UnavailableError);  // after call_timeout
//   proxy.resume();                                               // everything flows again
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace annals::testing {

class TcpProxy {
 public:
  /// Where a cut rule breaks the conversation.
  enum class Cut {
    /// The matching request is dropped: the client sent it, the server never sees it, so
    /// nothing it asked for happens.
    kBeforeServer,
    /// The matching request is forwarded, and the server's first reply to it is dropped: the
    /// server has run the request (and, for an autocommit statement or a pipeline ending in
    /// Sync, committed it: PostgreSQL commits before it sends ReadyForQuery and flushes a small
    /// result only then), but the client never learns the outcome.
    kAfterServerReplies,
  };

  /// Starts forwarding to the host and port of `url` (a postgresql:// URL with an explicit
  /// host and port, as scripts/pg and the test database give).
  explicit TcpProxy(const std::string& url);
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;
  ~TcpProxy();

  /// `url` with its host and port replaced by the proxy's.
  [[nodiscard]] const std::string& url() const noexcept { return url_; }

  /// Arms a one-shot rule: when a client next sends bytes containing `pattern`, cut as
  /// `where` says, close every proxied connection and refuse new ones until heal().
  void cut_on_request(std::string pattern, Cut where);

  /// Arms a one-shot rule: when a client next sends bytes containing `pattern`, stall() at
  /// once, holding those bytes back too (they reach the server first after resume()): a black
  /// hole that starts at an exact request (a NOTIFY, a COMMIT). heal() disarms it.
  void stall_on_request(std::string pattern);

  /// True while stalled (by stall() or by a stall_on_request rule that fired).
  [[nodiscard]] bool stalled() const noexcept { return stalled_; }

  /// Refuses (accepts and closes at once) new connections, or stops refusing.
  void refuse_new_connections(bool refuse);

  /// Disarms any rule (cut or stall) and stops refusing connections.
  void heal();

  /// Stops forwarding on every connection, current and new (new ones are still accepted),
  /// closing nothing: no byte a side sends after stall() returns reaches the other side until
  /// resume(). Idempotent.
  void stall();

  /// Forwards again, starting with what was buffered during the stall. Idempotent.
  void resume();

  /// How many times a rule fired.
  [[nodiscard]] std::size_t cuts() const;

  /// Connections refused so far.
  [[nodiscard]] std::size_t refused() const;

 private:
  struct Link;
  void run();
  void wake() noexcept;

  std::string url_;
  std::string target_host_;
  int target_port_ = 0;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  mutable std::mutex mutex_;
  // Held while bytes are moved, so that stall() returns only once no forwarding is under way.
  std::mutex forwarding_;
  std::atomic<bool> stalled_{false};
  std::optional<std::string> pattern_;
  std::optional<std::string> stall_pattern_;
  Cut where_ = Cut::kBeforeServer;
  bool refuse_ = false;
  std::size_t cuts_ = 0;
  std::size_t refused_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace annals::testing
