#include "tcp_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace annals::testing {

// One proxied connection. `tail`: the last client bytes, so that a pattern split across two
// reads still matches. `awaiting_reply`: the matching request went through; the server's reply
// is being dropped, message by message, until its ReadyForQuery ('Z'), which PostgreSQL sends
// after the commit.
struct TcpProxy::Link {
  int client = -1;
  int server = -1;
  std::string tail;
  std::string held;  // client bytes a stall_on_request rule held back, forwarded on resume()
  bool awaiting_reply = false;
  std::string reply;  // unparsed bytes of the dropped reply
};

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("TcpProxy: " + what + ": " + std::strerror(errno));
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Writes all of `data` to a blocking socket; false when the peer is gone.
bool write_all(int fd, const char* data, std::size_t size) noexcept {
  while (size > 0) {
    const auto n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

int connect_to(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
  }
  return -1;
}

// True once `reply` holds a complete ReadyForQuery message (type 'Z'); consumes whole messages.
bool ready_for_query(std::string& reply) {
  while (reply.size() >= 5) {
    std::uint32_t length = 0;
    std::memcpy(&length, reply.data() + 1, 4);
    length = ntohl(length);
    const std::size_t total = 1 + static_cast<std::size_t>(length);
    if (reply.size() < total) return false;
    const char type = reply[0];
    reply.erase(0, total);
    if (type == 'Z') return true;
  }
  return false;
}

}  // namespace

TcpProxy::TcpProxy(const std::string& url) {
  static const std::regex kUrl(R"(^(postgres(?:ql)?://(?:[^@/?]*@)?)([^:/?@]+):([0-9]+)(.*)$)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) {
    throw std::invalid_argument("TcpProxy: need a postgresql:// URL with host and port: " + url);
  }
  target_host_ = m[2].str();
  target_port_ = std::stoi(m[3].str());

  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) fail("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("bind");
  if (::listen(listener_, 64) != 0) fail("listen");
  socklen_t length = sizeof address;
  if (::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    fail("getsockname");
  }
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) fail("pipe");
  url_ = m[1].str() + "127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + m[4].str();
  thread_ = std::thread([this] { run(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
  close_fd(listener_);
  close_fd(wake_[0]);
  close_fd(wake_[1]);
}

void TcpProxy::cut_on_request(std::string pattern, Cut where) {
  std::lock_guard lock(mutex_);
  pattern_ = std::move(pattern);
  where_ = where;
}

void TcpProxy::stall_on_request(std::string pattern) {
  std::lock_guard lock(mutex_);
  stall_pattern_ = std::move(pattern);
}

void TcpProxy::refuse_new_connections(bool refuse) {
  std::lock_guard lock(mutex_);
  refuse_ = refuse;
}

void TcpProxy::heal() {
  std::lock_guard lock(mutex_);
  pattern_.reset();
  stall_pattern_.reset();
  refuse_ = false;
}

void TcpProxy::wake() noexcept {
  const char byte = 1;
  [[maybe_unused]] const auto n = ::write(wake_[1], &byte, 1);
}

void TcpProxy::stall() {
  std::lock_guard forwarding(forwarding_);
  stalled_ = true;
}

void TcpProxy::resume() {
  {
    std::lock_guard forwarding(forwarding_);
    stalled_ = false;
  }
  wake();  // the poll loop left the links out while stalled
}

std::size_t TcpProxy::cuts() const {
  std::lock_guard lock(mutex_);
  return cuts_;
}

std::size_t TcpProxy::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

void TcpProxy::run() {
  std::vector<Link> links;
  std::vector<char> buffer(64 * 1024);
  // Closes every link and refuses new connections: called with the mutex held.
  const auto cut_all = [&] {
    for (auto& link : links) {
      close_fd(link.client);
      close_fd(link.server);
    }
    links.clear();
    refuse_ = true;
    ++cuts_;
  };
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listener_, POLLIN, 0});
    // While stalled the links are left out (a negative fd is ignored), so that neither their
    // data nor a hang-up wakes the loop: nothing moves and nothing is closed.
    const bool stalled = stalled_;
    for (const auto& link : links) {
      fds.push_back({stalled ? -1 : link.client, POLLIN, 0});
      fds.push_back({stalled ? -1 : link.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (stop_) break;
    if ((fds[0].revents & POLLIN) != 0) {
      char drain[64];
      while (::read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        std::lock_guard lock(mutex_);
        int server = refuse_ ? -1 : connect_to(target_host_, target_port_);
        if (server < 0) {
          ++refused_;
          close_fd(client);
        } else {
          const int one = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          links.push_back(Link{.client = client, .server = server});
        }
      }
    }
    // The links polled this round (a cut may clear `links`, so walk by index with a check);
    // none when a stall began since the poll.
    std::unique_lock forwarding(forwarding_);
    if (!stalled_) {
      for (auto& link : links) {
        if (link.held.empty()) continue;
        if (!write_all(link.server, link.held.data(), link.held.size())) {
          close_fd(link.client);
          close_fd(link.server);
        }
        link.held.clear();
      }
    }
    const std::size_t polled = stalled_ ? 0 : (fds.size() - 2) / 2;
    for (std::size_t i = 0; i < polled && i < links.size(); ++i) {
      Link& link = links[i];
      const auto& from_client = fds[2 + 2 * i];
      const auto& from_server = fds[3 + 2 * i];
      bool closed = false;
      if ((from_client.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const auto n = ::recv(link.client, buffer.data(), buffer.size(), 0);
        if (n <= 0) {
          closed = true;
        } else {
          const std::string_view data(buffer.data(), static_cast<std::size_t>(n));
          std::unique_lock lock(mutex_);
          const std::string window = link.tail + std::string(data);
          if (stall_pattern_ && window.find(*stall_pattern_) != std::string::npos) {
            stall_pattern_.reset();
            stalled_ = true;  // under forwarding_, as stall() sets it
            link.held.append(data);
            link.tail.clear();
            break;  // nothing moves until resume()
          }
          if (pattern_ && window.find(*pattern_) != std::string::npos) {
            pattern_.reset();
            if (where_ == Cut::kBeforeServer) {
              cut_all();
              break;  // every link is gone
            }
            link.awaiting_reply = true;
          }
          const std::size_t longest = std::max(pattern_ ? pattern_->size() : 0,
                                               stall_pattern_ ? stall_pattern_->size() : 0);
          link.tail = window.substr(window.size() - std::min(window.size(), longest));
          lock.unlock();
          if (!write_all(link.server, data.data(), data.size())) closed = true;
        }
      }
      if (!closed && (from_server.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const auto n = ::recv(link.server, buffer.data(), buffer.size(), 0);
        if (n <= 0) {
          closed = true;
        } else if (link.awaiting_reply) {
          link.reply.append(buffer.data(), static_cast<std::size_t>(n));
          if (ready_for_query(link.reply)) {
            std::lock_guard lock(mutex_);
            cut_all();
            break;
          }
        } else if (!write_all(link.client, buffer.data(), static_cast<std::size_t>(n))) {
          closed = true;
        }
      }
      if (closed) {
        close_fd(link.client);
        close_fd(link.server);
      }
    }
    forwarding.unlock();
    std::erase_if(links, [](const Link& link) { return link.client < 0; });
  }
  for (auto& link : links) {
    close_fd(link.client);
    close_fd(link.server);
  }
}

}  // namespace annals::testing
