// Bookkeeping of the operations UCX holds a request for.
//
// An Op is created before its _nbx call (its address is the request's user_data). When the call
// completes at once the Op is discarded and the caller queues the completion itself. "At once"
// is either NULL / an error pointer, or a request whose callback UCX already ran inside the _nbx
// call (receives are posted with UCP_OP_ATTR_FLAG_NO_IMM_CMPL, because UCX 1.13 leaves
// recv_info.tag_info unset when a receive completes immediately: the length would be lost).
// Otherwise the Op is "attached": UCX calls on_send_done/on_recv_done exactly once, from inside a
// UCX call on the progress thread; that callback frees the UCX request and moves the Op to the
// done queue, where the transport translates it into a Completion.
//
// Two flags make "exactly once" hold when a peer fails: `reported` (the user's callback has been
// queued) and `request` (UCX still owns a request that will call back). A failed peer's Ops are
// reported at once, while UCX may release their requests later; an Op is destroyed only when both
// are done, so a late UCX callback never finds freed memory.
#pragma once

#include <ucp/api/ucp.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tern/transport/transport.h"

namespace tern::transport::ucx {

class OpTable;

enum class OpKind : std::uint8_t { kSend, kRecv };

struct Op {
  OpTable* table = nullptr;  // null once orphaned (see OpTable::orphan)
  int peer = -1;
  OpKind kind = OpKind::kSend;
  Tag tag = 0;
  std::size_t size = 0;      // send: length; receive: capacity
  CompletionFn done;
  void* request = nullptr;   // the UCX request while UCX owns it
  bool posting = false;      // inside the _nbx call that posts it
  bool reported = false;     // the user's completion has been queued
  ucs_status_t ucx_status = UCS_INPROGRESS;
  std::size_t received = 0;  // receive: the message length UCX reported
};

class OpTable {
 public:
  explicit OpTable(int ranks);
  OpTable(const OpTable&) = delete;
  OpTable& operator=(const OpTable&) = delete;
  ~OpTable();

  /// A new Op, marked `posting` until posted() is called.
  Op* create(int peer, OpKind kind, Tag tag, std::size_t size, CompletionFn done);
  /// The _nbx call for `op` returned `result`. Returns true when UCX now owns a request that will
  /// call back (the Op is attached); false when the operation finished inside the call, with
  /// op->ucx_status set (the caller reports it, then discard()s the Op).
  bool posted(Op* op, ucs_status_ptr_t result);
  /// Drops an Op that was never attached.
  void discard(Op* op);

  /// ucp_send_nx_callback_t / ucp_tag_recv_nbx_callback_t; user_data is the Op.
  static void on_send_done(void* request, ucs_status_t status, void* user_data);
  static void on_recv_done(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user_data);

  /// The next Op whose UCX request has completed, or nullptr.
  Op* pop_done();
  /// Ops with `peer` whose completion has not been reported yet.
  std::vector<Op*> unreported(int peer) const;
  bool has_unreported(int peer) const { return !unreported_[static_cast<std::size_t>(peer)].empty(); }
  /// Records that `op`'s completion was queued for the user.
  void mark_reported(Op* op);
  /// Destroys `op` if it is reported and UCX has let go of it.
  void release_if_finished(Op* op);

  /// Ops UCX still holds a request for.
  std::vector<Op*> attached() const;
  std::size_t attached_count() const noexcept { return attached_; }
  /// Last resort at shutdown, for a request UCX never completed: frees the request (UCX finishes it
  /// on its own) and keeps the Op alive, detached from this table, for the callback UCX may still
  /// make. Counts as a leak, deliberately: reporting the Op's memory free would be worse.
  void orphan(Op* op);

 private:
  void finished_by_ucx(Op* op, void* request, ucs_status_t status, std::size_t received);

  std::unordered_map<Op*, std::unique_ptr<Op>> ops_;
  std::vector<std::unordered_set<Op*>> unreported_;  // per peer
  std::deque<Op*> done_;
  std::size_t attached_ = 0;
};

}  // namespace tern::transport::ucx
