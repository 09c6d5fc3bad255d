#include "tern/daemon/daemon.h"

#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "daemon_impl.h"
#include "group_state.h"
#include "session.h"
#include "tern/transport/bootstrap.h"

namespace tern::daemon {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kTickInterval = std::chrono::milliseconds(500);
constexpr auto kHealthWindow = std::chrono::seconds(5);

std::int64_t now_ns() { return Clock::now().time_since_epoch().count(); }

std::string local_host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

std::string first_ipv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "127.0.0.1";
  std::string found = "127.0.0.1";
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (!inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf)) continue;
    if (std::string(buf).rfind("127.", 0) == 0) continue;
    found = buf;
    break;
  }
  freeifaddrs(list);
  return found;
}

// A TCP port nobody listens on right now at `host` (the rendezvous of a new group binds it later;
// the window between is small, and a clash fails that group's formation with a clear error).
Result<std::uint16_t> free_port(const std::string& host) {
  try {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address(host), 0));
    return a.local_endpoint().port();
  } catch (const std::exception& e) {
    return unavailable("no free TCP port on " + host + " for a rendezvous: " + e.what());
  }
}

Status prepare_socket_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::exists(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec) return unavailable("cannot create the socket directory " + parent.string() + ": " + ec.message());
    ::chmod(parent.c_str(), 0755);
  }
  if (!fs::exists(path, ec)) return Status::ok();
  if (!fs::is_socket(path, ec)) return unavailable(path + " exists and is not a socket; refusing to replace it");
  // A socket file: in use only if someone accepts on it.
  asio::io_context io;
  asio::local::stream_protocol::socket probe(io);
  boost::system::error_code connect_error;
  probe.connect(asio::local::stream_protocol::endpoint(path), connect_error);
  if (!connect_error) return unavailable("another ternd is serving " + path);
  fs::remove(path, ec);
  if (ec) return unavailable("cannot remove the stale socket " + path + ": " + ec.message());
  return Status::ok();
}

}  // namespace

Daemon::Impl::Impl(const DaemonConfig& c) : config(c), host_name(local_host_name()) {
  advertise_host = config.advertise_host.empty() ? first_ipv4() : config.advertise_host;
  last_progress_ns = now_ns();
}

void Daemon::Impl::record_error(const std::string& message) {
  std::lock_guard lock(mutex);
  ++protocol_errors;
  recent_errors.push_back(message);
  if (recent_errors.size() > kMaxRecentErrors) recent_errors.pop_front();
}

std::vector<std::shared_ptr<GroupState>> Daemon::Impl::take_all_groups() {
  std::vector<std::shared_ptr<GroupState>> all;
  std::lock_guard lock(mutex);
  for (auto& [key, group] : groups) all.push_back(std::move(group));
  groups.clear();
  for (auto& group : retired) all.push_back(std::move(group));
  retired.clear();
  return all;
}

void Daemon::Impl::accept_next() {
  acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec,
                                                    asio::local::stream_protocol::socket socket) {
    if (ec || self->stopping) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    PeerCredentials creds;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      creds.pid = static_cast<std::uint32_t>(cred.pid);
      creds.uid = cred.uid;
      creds.gid = cred.gid;
    }
    std::shared_ptr<Session> session;
    {
      std::lock_guard lock(self->mutex);
      if (self->sessions.size() >= self->config.max_clients) {
        ++self->clients_refused;
      } else {
        const std::uint64_t id = self->next_client_id++;
        ++self->clients_accepted;
        session = std::make_shared<Session>(*self, std::move(socket), id, creds);
        self->sessions.emplace(id, session);
      }
    }
    if (session) {
      spdlog::info("{} connected (gid {})", session->describe(), creds.gid);
      session->start();
    } else {
      spdlog::warn("refused a client (pid {}, uid {}): {} clients connected already (max_clients)", creds.pid,
                   creds.uid, self->config.max_clients);
      const auto frame = protocol::encode_reply(
          protocol::MessageType::kHello,
          unavailable("ternd serves " + std::to_string(self->config.max_clients) + " clients already (max_clients)"));
      boost::system::error_code ignored;
      asio::write(socket, asio::buffer(frame), ignored);
    }
    self->accept_next();
  });
}

void Daemon::Impl::on_tick() {
  last_progress_ns = now_ns();
  {
    std::vector<std::shared_ptr<GroupState>> done;
    std::lock_guard lock(mutex);
    for (auto it = retired.begin(); it != retired.end();) {
      if ((*it)->worker_done()) {
        done.push_back(std::move(*it));
        it = retired.erase(it);
      } else {
        ++it;
      }
    }
  }  // `done` is destroyed after the lock: joining a finished worker is immediate
  tick.expires_after(kTickInterval);
  tick.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && !self->stopping) self->on_tick();
  });
}

void Daemon::Impl::keep_polling() {
  if (config.poll_us == 0) return;
  poll_until = std::chrono::steady_clock::now() + std::chrono::microseconds(config.poll_us);
  if (!poll_posted) post_poll();
}

void Daemon::Impl::post_poll() {
  poll_posted = true;
  asio::post(io, [self = shared_from_this()] { self->poll_rings(); });
}

// A trainer's next operation usually follows its last completion within microseconds (back-to-back
// buckets, a training loop). Polling the rings for a little while catches it without the doorbell's
// epoll wake-up, which costs 5-60 us on a busy or virtualized machine. Each step is a separate
// handler, re-posted behind whatever else is ready, so sockets, timers and other sessions are
// served in between (asio polls the reactor without blocking while handlers are queued).
void Daemon::Impl::poll_rings() {
  poll_posted = false;
  if (stopping) return;
  {
    std::lock_guard lock(mutex);
    for (const auto& [id, s] : sessions) poll_sessions.push_back(s);
  }
  std::size_t found = 0;
  for (const auto& s : poll_sessions) found += s->poll_submissions();
  poll_sessions.clear();  // after the lock: a closed session may be destroyed here
  submissions_polled += found;
  if (found > 0) {
    keep_polling();
  } else if (std::chrono::steady_clock::now() < poll_until) {
    post_poll();
  }
}

void Daemon::Impl::session_closed(std::uint64_t id) {
  std::shared_ptr<Session> keep;
  std::lock_guard lock(mutex);
  auto it = sessions.find(id);
  if (it == sessions.end()) return;
  keep = std::move(it->second);  // its handlers may still hold it; released after the lock
  sessions.erase(it);
}

Result<std::shared_ptr<GroupState>> Daemon::Impl::group_for_join(const std::string& id_text, std::uint32_t uid,
                                                                 int rank, int nranks, int local_size,
                                                                 std::uint64_t seed,
                                                                 std::chrono::milliseconds timeout) {
  if (stopping) return unavailable("ternd is shutting down");
  if (nranks < 1 || local_size < 1 || nranks % local_size != 0 || rank < 0 || rank >= nranks)
    return invalid_argument("group join: rank " + std::to_string(rank) + ", nranks " + std::to_string(nranks) +
                            ", local_size " + std::to_string(local_size) +
                            " are inconsistent (need 0 <= rank < nranks, local_size dividing nranks)");
  TERN_ASSIGN_OR_RETURN(transport::UniqueId id, transport::UniqueId::parse(id_text));
  if (!id.complete()) return invalid_argument("group join: the unique id has no port");
  std::lock_guard lock(mutex);
  auto it = groups.find(id_text);
  if (it != groups.end()) {
    if (it->second->params().uid != uid)
      return invalid_argument("group " + it->second->name() + " on this node belongs to uid " +
                              std::to_string(it->second->params().uid) + "; uid " + std::to_string(uid) +
                              " may not join it");
    return it->second;
  }
  GroupParams params;
  params.uid = uid;
  params.nranks = nranks;
  params.local_size = local_size;
  params.node_rank = rank / local_size;
  params.nnodes = nranks / local_size;
  params.seed = seed;
  params.formation_deadline = Clock::now() + timeout;
  auto group = std::make_shared<GroupState>(*this, std::move(id), params);
  groups.emplace(id_text, group);
  return group;
}

void Daemon::Impl::retire_group_if_empty(const std::shared_ptr<GroupState>& group) {
  if (!group->all_left()) return;
  group->fail(Status(StatusCode::kPeerFailure, "group " + group->name() + ": every local trainer left"));
  std::lock_guard lock(mutex);
  for (auto it = groups.begin(); it != groups.end(); ++it) {
    if (it->second == group) {
      retired.push_back(std::move(it->second));
      groups.erase(it);
      return;
    }
  }
}

Result<std::string> Daemon::Impl::make_unique_id() const {
  std::uint16_t port = config.rendezvous_port;
  if (port == 0) {
    TERN_ASSIGN_OR_RETURN(port, free_port(advertise_host));
  }
  TERN_ASSIGN_OR_RETURN(transport::UniqueId id, transport::UniqueId::generate(advertise_host, port));
  return id.to_string();
}

std::string Daemon::Impl::status_json() const {
  nlohmann::json j;
  std::lock_guard lock(mutex);
  j["daemon"] = {{"host", host_name},
                 {"advertise_host", advertise_host},
                 {"socket", config.socket_path},
                 {"pid", ::getpid()},
                 {"stopping", stopping.load()},
                 {"clients_accepted", clients_accepted},
                 {"clients_refused", clients_refused},
                 {"protocol_errors", protocol_errors},
                 {"submissions_polled", submissions_polled.load()},
                 {"ops_overlapped", ops_overlapped.load()}};
  j["clients"] = nlohmann::json::array();
  for (const auto& [id, s] : sessions)
    j["clients"].push_back({{"id", id},
                            {"pid", s->credentials().pid},
                            {"uid", s->credentials().uid},
                            {"arenas", s->arena_count()},
                            {"arena_bytes", s->arena_bytes()},
                            {"groups", s->group_count()}});
  j["groups"] = nlohmann::json::array();
  for (const auto& [key, g] : groups) j["groups"].push_back(g->status());
  j["errors"] = recent_errors;
  return j.dump();
}

void Daemon::Impl::shutdown_on_io_thread() {
  std::string reason;
  std::vector<std::shared_ptr<GroupState>> all_groups;
  std::vector<std::shared_ptr<Session>> all_sessions;
  {
    std::lock_guard lock(mutex);
    reason = stop_reason;
    for (auto& [k, g] : groups) all_groups.push_back(g);
    for (auto& [k, s] : sessions) all_sessions.push_back(s);
  }
  boost::system::error_code ignored;
  acceptor.close(ignored);
  tick.cancel();
  // Fail every pending operation before closing the sockets, so that each completion says why:
  // those queued in groups, and those still in a ring whose doorbell the io thread has not handled.
  const Status shutting_down = unavailable("ternd is shutting down: " + reason);
  for (auto& g : all_groups) g->fail(shutting_down);
  for (auto& s : all_sessions) s->fail_unread_submissions(shutting_down);
  for (auto& s : all_sessions) s->close(shutting_down.message(), false);
}

Daemon::Daemon(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Daemon>> Daemon::create(const DaemonConfig& config) {
  if (config.socket_path.empty()) return invalid_argument("socket_path is empty");
  if (config.socket_path.size() >= sizeof(sockaddr_un{}.sun_path))
    return invalid_argument("socket_path " + config.socket_path + " is too long for a Unix socket");
  if (config.max_clients == 0) return invalid_argument("max_clients is 0");
  gid_t gid = static_cast<gid_t>(-1);
  if (!config.socket_group.empty()) {
    group* g = ::getgrnam(config.socket_group.c_str());
    if (!g) return invalid_argument("socket_group '" + config.socket_group + "' does not exist");
    gid = g->gr_gid;
  }
  TERN_CHECK(prepare_socket_path(config.socket_path));
  auto impl = std::make_shared<Impl>(config);
  try {
    asio::local::stream_protocol::endpoint endpoint(config.socket_path);
    impl->acceptor.open(endpoint.protocol());
    // The socket is created with the process umask; narrow it before anyone can connect.
    const mode_t old_umask = ::umask(0117);
    boost::system::error_code bind_error;
    impl->acceptor.bind(endpoint, bind_error);
    ::umask(old_umask);
    if (bind_error) return unavailable("cannot bind " + config.socket_path + ": " + bind_error.message());
    if (::chmod(config.socket_path.c_str(), 0660) != 0)
      return unavailable("chmod 0660 " + config.socket_path + ": " + std::strerror(errno));
    if (gid != static_cast<gid_t>(-1) && ::chown(config.socket_path.c_str(), static_cast<uid_t>(-1), gid) != 0)
      return unavailable("chgrp " + config.socket_group + " " + config.socket_path + ": " + std::strerror(errno));
    impl->acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    return unavailable("control socket " + config.socket_path + ": " + e.what());
  }
  spdlog::info("ternd listening on {} (host {}, advertising {})", config.socket_path, impl->host_name,
               impl->advertise_host);
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::~Daemon() {
  stop("ternd destroyed");
  // Runs the shutdown stop() posted (if run() did not) and every cancelled handler, which releases
  // what they hold.
  impl_->io.restart();
  impl_->io.run();
  std::vector<std::shared_ptr<GroupState>> groups = impl_->take_all_groups();
  groups.clear();  // joins the workers
  impl_->io.restart();
  impl_->io.poll();  // replies the workers posted before they ended
  {
    std::lock_guard lock(impl_->mutex);
    impl_->sessions.clear();
  }
  std::error_code ec;
  std::filesystem::remove(impl_->config.socket_path, ec);
}

Status Daemon::run() {
  if (impl_->ran.exchange(true)) return invalid_argument("Daemon::run() called twice");
  impl_->accept_next();
  impl_->on_tick();
  impl_->io.run();
  // Join every group worker: they finish promptly once failed (stop() failed them all).
  std::vector<std::shared_ptr<GroupState>> groups = impl_->take_all_groups();
  groups.clear();
  impl_->last_progress_ns = 0;
  spdlog::info("ternd stopped: {}", impl_->stop_reason);
  return Status::ok();
}

void Daemon::stop(std::string reason) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->stop_reason = std::move(reason);
    impl_->stopping = true;
  }
  asio::post(impl_->io, [impl = impl_] {
    impl->shutdown_on_io_thread();
    impl->io.stop();
  });
}

bool Daemon::healthy() const {
  if (impl_->stopping) return false;
  const auto last = impl_->last_progress_ns.load();
  return now_ns() - last < std::chrono::duration_cast<std::chrono::nanoseconds>(kHealthWindow).count();
}

std::string Daemon::status_json() const { return impl_->status_json(); }

const std::string& Daemon::socket_path() const { return impl_->config.socket_path; }

}  // namespace tern::daemon
