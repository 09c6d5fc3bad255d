// ternd's core: the control socket, client sessions, shared memory, groups and their workers.
// The ternd executable (daemon/main/) loads the configuration, sets up logging and systemd
// notification, and drives one Daemon:
//
//   TERN_ASSIGN_OR_RETURN(auto daemon, Daemon::create(config));   // socket bound: ready to serve
//   sd_notify("READY=1");
//   Status s = daemon->run();   // until stop(); a SIGTERM handler thread calls daemon->stop("SIGTERM")
//
// Threads: run() serves the control socket and every client's submission doorbell on the calling
// thread (Boost.Asio). Each group has a worker thread that forms the inter-node group and runs its
// allreduces, so a slow group never blocks the control loop or other groups.
//
// Failure semantics (docs/daemon.md): a malformed or hostile frame or ring entry disconnects that
// client alone, with one log line; a client that disconnects (or dies) releases its shared memory
// and fails its groups' pending operations on every node ("rank r on host h left"); stop() fails
// every in-flight operation with its reason and closes every connection, so clients see
// TERN_UNAVAILABLE and may reconnect to a restarted daemon. A client may only name its own arenas
// and groups (handles are per connection), and may not join a group that a client of another uid
// joined on this node.
//
// Thread safety: create() and run() on one thread; stop(), healthy() and status_json() from any
// thread, at any time after create() (also concurrently with run()). The destructor stops the
// daemon (if running) and joins every thread; it must not run concurrently with run().
#pragma once

#include <memory>
#include <string>

#include "tern/common/status.h"
#include "tern/daemon/config.h"

namespace tern::daemon {

class Daemon {
 public:
  /// Validates the configuration and binds the control socket: creates the socket's parent
  /// directory (mode 0755) if missing, removes a stale socket file (one nobody listens on; a live
  /// one is kUnavailable "another ternd is serving ..."), and makes the socket mode 0660 owned by
  /// `socket_group` (if set). Returns with the socket accepting (connections queue until run()).
  static Result<std::unique_ptr<Daemon>> create(const DaemonConfig& config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Serves until stop(). OK after a clean shutdown (every group worker joined, socket removed).
  /// At most once.
  Status run();
  /// Any thread, any number of times (the first reason wins). In-flight operations fail with
  /// kUnavailable "ternd is shutting down: <reason>", connections close, run() returns promptly
  /// (a worker inside an inter-node allreduce ends it within kPeerFailureGrace, 2 s). Called before
  /// run(), run() returns at once.
  void stop(std::string reason);
  /// For the systemd watchdog: true while the serving loop made progress in the last 5 s (and
  /// before run() has started); false once it stalled or stopped.
  bool healthy() const;
  /// What `ternctl status --json` shows: daemon, clients, groups (members, ops in flight and done,
  /// bytes in/out per codec, last errors). Never contains a group secret.
  std::string status_json() const;
  /// The socket path actually bound.
  const std::string& socket_path() const;

  struct Impl;

 private:
  explicit Daemon(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::daemon
