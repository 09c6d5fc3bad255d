// Mailboxes guarded by one mutex per hub: correctness over speed (tests move megabytes, not
// gigabytes). Completions are queued per rank and delivered by that rank's progress().
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <string>

#include "tern/transport/loopback.h"

namespace tern::transport {

namespace {

struct PendingRecv {
  int source;
  Tag tag;
  void* data;
  std::size_t capacity;
  CompletionFn done;
};

struct UnexpectedMessage {
  int source;
  Tag tag;
  std::vector<std::uint8_t> bytes;
};

struct ReadyCompletion {
  CompletionFn done;
  Completion completion;
};

struct Mailbox {
  std::list<PendingRecv> posted;
  std::list<UnexpectedMessage> unexpected;
  std::deque<ReadyCompletion> ready;
  std::vector<Status> peer_failures;  // per source rank; ok = healthy
  bool alive = true;
  bool woken = false;
};

}  // namespace

struct LoopbackHub {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Mailbox> boxes;
};

namespace {

std::string loopback_name(int rank) { return "rank " + std::to_string(rank) + " (loopback)"; }

class LoopbackTransport final : public Transport {
 public:
  LoopbackTransport(std::shared_ptr<LoopbackHub> hub, int rank) : hub_(std::move(hub)), rank_(rank) {}

  ~LoopbackTransport() override {
    std::unique_lock lock(hub_->mutex);
    Mailbox& mine = hub_->boxes[rank_];
    mine.alive = false;
    const Status gone(StatusCode::kPeerFailure, loopback_name(rank_) + " left");
    for (int r = 0; r < size(); ++r)
      if (r != rank_) fail_locked(r, rank_, gone);
    mine.posted.clear();
    mine.unexpected.clear();
    mine.ready.clear();
    hub_->changed.notify_all();
  }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(hub_->boxes.size()); }
  std::string peer_name(int peer) const override { return loopback_name(peer); }
  Capabilities capabilities() const override { return {false, "loopback (in-process)"}; }

  Status send(int peer, Tag tag, const void* data, std::size_t length, MemoryKind memory,
              CompletionFn done) override {
    TERN_CHECK(check_peer(peer, memory));
    std::unique_lock lock(hub_->mutex);
    Mailbox& mine = hub_->boxes[rank_];
    Mailbox& theirs = hub_->boxes[peer];
    if (!mine.peer_failures[peer].is_ok()) {
      mine.ready.push_back({std::move(done), {mine.peer_failures[peer], 0}});
      return Status::ok();
    }
    auto match = std::find_if(theirs.posted.begin(), theirs.posted.end(),
                              [&](const PendingRecv& r) { return r.source == rank_ && r.tag == tag; });
    if (match != theirs.posted.end()) {
      deliver_locked(theirs, *match, data, length);
      theirs.posted.erase(match);
    } else {
      const auto* bytes = static_cast<const std::uint8_t*>(data);
      theirs.unexpected.push_back({rank_, tag, std::vector<std::uint8_t>(bytes, bytes + length)});
    }
    mine.ready.push_back({std::move(done), {Status::ok(), length}});
    hub_->changed.notify_all();
    return Status::ok();
  }

  Status recv(int peer, Tag tag, void* data, std::size_t capacity, MemoryKind memory, CompletionFn done) override {
    TERN_CHECK(check_peer(peer, memory));
    std::unique_lock lock(hub_->mutex);
    Mailbox& mine = hub_->boxes[rank_];
    auto match = std::find_if(mine.unexpected.begin(), mine.unexpected.end(),
                              [&](const UnexpectedMessage& m) { return m.source == peer && m.tag == tag; });
    PendingRecv pending{peer, tag, data, capacity, std::move(done)};
    if (match != mine.unexpected.end()) {
      deliver_locked(mine, pending, match->bytes.data(), match->bytes.size());
      mine.unexpected.erase(match);
    } else if (!mine.peer_failures[peer].is_ok()) {
      mine.ready.push_back({std::move(pending.done), {mine.peer_failures[peer], 0}});
    } else {
      mine.posted.push_back(std::move(pending));
    }
    return Status::ok();
  }

  Status progress(std::chrono::milliseconds max_wait) override {
    std::deque<ReadyCompletion> batch;
    {
      std::unique_lock lock(hub_->mutex);
      Mailbox& mine = hub_->boxes[rank_];
      if (mine.ready.empty() && !mine.woken && max_wait.count() > 0)
        hub_->changed.wait_for(lock, max_wait, [&] { return !mine.ready.empty() || mine.woken; });
      mine.woken = false;
      batch.swap(mine.ready);
    }
    for (auto& item : batch) item.done(item.completion);
    return Status::ok();
  }

  void fail_peer(int peer, const Status& reason) override {
    if (peer < 0 || peer >= size() || peer == rank_) return;
    std::unique_lock lock(hub_->mutex);
    fail_locked(rank_, peer, reason);
  }

  void wake() override {
    std::unique_lock lock(hub_->mutex);
    hub_->boxes[rank_].woken = true;
    hub_->changed.notify_all();
  }

 private:
  Status check_peer(int peer, MemoryKind memory) const {
    if (peer < 0 || peer >= size() || peer == rank_)
      return invalid_argument("peer " + std::to_string(peer) + " is not another rank of this group of " +
                              std::to_string(size()));
    if (memory != MemoryKind::kHost) return unavailable("the loopback transport moves host memory only");
    return Status::ok();
  }

  // Completes the receive `r` in `box` with `length` bytes from `data` (or a truncation error).
  static void deliver_locked(Mailbox& box, PendingRecv& r, const void* data, std::size_t length) {
    if (length > r.capacity) {
      box.ready.push_back({std::move(r.done),
                           {corrupt_data("message of " + std::to_string(length) + " bytes from " +
                                         loopback_name(r.source) + " exceeds the " + std::to_string(r.capacity) +
                                         "-byte receive buffer"),
                            0}});
      return;
    }
    if (length) std::memcpy(r.data, data, length);
    box.ready.push_back({std::move(r.done), {Status::ok(), length}});
  }

  // In `observer`'s mailbox, fails everything involving `peer` with `reason`.
  void fail_locked(int observer, int peer, const Status& reason) {
    Mailbox& box = hub_->boxes[observer];
    if (!box.alive || !box.peer_failures[peer].is_ok()) return;
    box.peer_failures[peer] = reason;
    for (auto it = box.posted.begin(); it != box.posted.end();) {
      if (it->source == peer) {
        box.ready.push_back({std::move(it->done), {reason, 0}});
        it = box.posted.erase(it);
      } else {
        ++it;
      }
    }
    hub_->changed.notify_all();
  }

  std::shared_ptr<LoopbackHub> hub_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Transport>> make_loopback_group(int size) {
  auto hub = std::make_shared<LoopbackHub>();
  hub->boxes.resize(static_cast<std::size_t>(size));
  for (auto& box : hub->boxes) box.peer_failures.assign(static_cast<std::size_t>(size), Status::ok());
  std::vector<std::unique_ptr<Transport>> group;
  for (int r = 0; r < size; ++r) group.push_back(std::make_unique<LoopbackTransport>(hub, r));
  return group;
}

}  // namespace tern::transport
