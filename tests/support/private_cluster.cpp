#include "private_cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <system_error>

#include <pqxx/pqxx>

#include "annals/postgres/postgres_event_store.hpp"
#include "run_process.hpp"

namespace annals::testing {
namespace {

namespace fs = std::filesystem;

// The unprivileged user that owns the cluster when the test runs as root (as in scripts/pg).
constexpr const char* kOwner = "annals-pg";

bool is_root() { return ::geteuid() == 0; }

fs::path server_binaries() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (fs::exists(entry.path() / "bin" / "initdb")) return entry.path() / "bin";
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto end = std::min(dirs.find(':', start), dirs.size());
    const fs::path dir = dirs.substr(start, end - start);
    if (!dir.empty() && fs::exists(dir / "initdb")) return dir;
    start = end + 1;
  }
  throw std::runtime_error(
      "PrivateCluster: PostgreSQL server binaries (initdb, pg_ctl) not found in "
      "/usr/lib/postgresql/*/bin or PATH (run scripts/bootstrap)");
}

// A port nobody listens on now. Another process could take it before the server binds it;
// then start() fails with the server's "could not bind" in its message.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("PrivateCluster: socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("PrivateCluster: could not find a free port");
  return ntohs(address.sin_port);
}

fs::path make_folder() {
  std::string name = (fs::temp_directory_path() / "annals-cluster-XXXXXX").string();
  if (::mkdtemp(name.data()) == nullptr) {
    throw std::runtime_error("PrivateCluster: mkdtemp failed in " +
                             fs::temp_directory_path().string());
  }
  return name;
}

// Creates the owner user when missing and hands it the folder (root only).
void hand_to_owner(const fs::path& dir) {
  if (::getpwnam(kOwner) == nullptr) {
    // Two test processes may race here; the loser's useradd fails, the user exists anyway.
    (void)run_process({"/usr/sbin/useradd", "--system", "--no-create-home", "--shell",
                       "/usr/sbin/nologin", kOwner});
  }
  const passwd* owner = ::getpwnam(kOwner);
  if (owner == nullptr) throw std::runtime_error("PrivateCluster: cannot create user annals-pg");
  if (::chown(dir.c_str(), owner->pw_uid, owner->pw_gid) != 0) {
    throw std::runtime_error("PrivateCluster: cannot chown " + dir.string());
  }
  // The owner must reach the folder through every parent (a TMPDIR under /root, say).
  for (fs::path p = dir.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    std::error_code ec;
    fs::permissions(p, fs::perms::others_exec, fs::perm_options::add, ec);
  }
}

std::string tail_of(const fs::path& file, std::size_t bytes = 2000) {
  std::ifstream in(file, std::ios::binary);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace

PrivateCluster::PrivateCluster() : dir_(make_folder()), bin_(server_binaries()) {
  try {
    if (is_root()) hand_to_owner(dir_);
    port_ = free_port();
    const std::string server = "postgresql://annals@127.0.0.1:" + std::to_string(port_);
    url_ = server + "/annals";
    admin_url_ = server + "/postgres";
    initdb();
    configure();
    start();
    create_database();
    annals::postgres::migrate(url_);
  } catch (...) {
    remove();
    throw;
  }
}

PrivateCluster::~PrivateCluster() { remove(); }

void PrivateCluster::remove() noexcept {
  try {
    if (running_) stop_immediate();
  } catch (const std::exception& e) {
    std::cerr << "warning: " << e.what() << "\n";
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void PrivateCluster::run_as_owner(const std::string& step, std::vector<std::string> argv) {
  if (is_root()) argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", kOwner, "--"});
  const auto result = run_process(argv);
  if (result.exit_code != 0) {
    throw std::runtime_error("PrivateCluster: " + step + " failed: " + result.out + result.err +
                             "\n--- server log\n" + tail_of(dir_ / "server.log"));
  }
}

void PrivateCluster::initdb() {
  // --no-sync: the folder is thrown away with the test; the server itself runs with fsync on.
  run_as_owner("initdb",
               {(bin_ / "initdb").string(), "-D", (dir_ / "data").string(), "-U", "annals",
                "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"});
}

// The settings of scripts/pg (scripts/pg.conf, their one source), then this cluster's port (in
// the configuration, so that every start uses it) and socket folder, and less memory: several
// of these clusters may run at once. Crash recovery first syncs the data folder: file by file
// (the default) took 9 s on a busy test machine, one syncfs() 3.7 s.
void PrivateCluster::configure() {
  std::ifstream shared(ANNALS_PG_SETTINGS_FILE);
  if (!shared) {
    throw std::runtime_error("PrivateCluster: cannot read the server settings " +
                             std::string(ANNALS_PG_SETTINGS_FILE));
  }
  std::ofstream conf(dir_ / "data" / "postgresql.conf", std::ios::app);
  conf << shared.rdbuf() << "\n"
       << "port = " << port_ << "\n"
       << "unix_socket_directories = '" << dir_.string() << "'\n"
       << "max_connections = 100\n"
       << "shared_buffers = 32MB\n"
       << "recovery_init_sync_method = syncfs\n";
  if (!conf) throw std::runtime_error("PrivateCluster: cannot write postgresql.conf");
}

void PrivateCluster::create_database() {
  pqxx::connection c(admin_url_);
  pqxx::nontransaction tx(c);
  tx.exec("CREATE DATABASE annals");
}

void PrivateCluster::start() {
  run_as_owner("pg_ctl start", {(bin_ / "pg_ctl").string(), "-D", (dir_ / "data").string(), "-l",
                                (dir_ / "server.log").string(), "-w", "-t", "60", "start"});
  running_ = true;
}

void PrivateCluster::stop_immediate() {
  run_as_owner("pg_ctl stop", {(bin_ / "pg_ctl").string(), "-D", (dir_ / "data").string(), "-m",
                               "immediate", "-w", "-t", "60", "stop"});
  running_ = false;
}

void PrivateCluster::restart_with_next_xid(std::uint64_t next_xid) {
  constexpr std::uint64_t kSegment = 1048576;  // transactions per pg_xact segment file
  if (next_xid == 0 || next_xid % kSegment != 0) {
    throw std::invalid_argument("PrivateCluster: next_xid must be a multiple of 1048576");
  }
  const auto data = (dir_ / "data").string();
  run_as_owner("pg_ctl stop",
               {(bin_ / "pg_ctl").string(), "-D", data, "-m", "fast", "-w", "-t", "60", "stop"});
  running_ = false;
  run_as_owner("pg_resetwal",
               {(bin_ / "pg_resetwal").string(), "-x", std::to_string(next_xid), "-D", data});
  start();
}

}  // namespace annals::testing
