#include "op_table.h"

#include <utility>

#include "ucs_status.h"

namespace tern::transport::ucx {

OpTable::OpTable(int ranks) : unreported_(static_cast<std::size_t>(ranks)) {}

OpTable::~OpTable() = default;

Op* OpTable::create(int peer, OpKind kind, Tag tag, std::size_t size, CompletionFn done) {
  auto op = std::make_unique<Op>();
  op->table = this;
  op->peer = peer;
  op->kind = kind;
  op->tag = tag;
  op->size = size;
  op->done = std::move(done);
  op->posting = true;
  Op* raw = op.get();
  ops_.emplace(raw, std::move(op));
  unreported_[static_cast<std::size_t>(peer)].insert(raw);
  return raw;
}

bool OpTable::posted(Op* op, ucs_status_ptr_t result) {
  op->posting = false;
  if (result == nullptr) {
    op->ucx_status = UCS_OK;
    return false;
  }
  if (ptr_is_error(result)) {
    op->ucx_status = ptr_status(result);
    return false;
  }
  if (op->ucx_status != UCS_INPROGRESS) {  // the callback already ran, inside the call
    ucp_request_free(result);
    return false;
  }
  op->request = result;
  ++attached_;
  return true;
}

void OpTable::discard(Op* op) {
  unreported_[static_cast<std::size_t>(op->peer)].erase(op);
  ops_.erase(op);
}

void OpTable::on_send_done(void* request, ucs_status_t status, void* user_data) {
  auto* op = static_cast<Op*>(user_data);
  if (op->table == nullptr) return;  // orphaned: its request was freed already
  op->table->finished_by_ucx(op, request, status, 0);
}

void OpTable::on_recv_done(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user_data) {
  auto* op = static_cast<Op*>(user_data);
  if (op->table == nullptr) return;
  op->table->finished_by_ucx(op, request, status, info != nullptr ? info->length : 0);
}

void OpTable::finished_by_ucx(Op* op, void* request, ucs_status_t status, std::size_t received) {
  op->ucx_status = status;
  op->received = received;
  if (op->posting) return;  // posted() sees the status and frees the request
  op->request = nullptr;
  --attached_;
  ucp_request_free(request);
  done_.push_back(op);
}

Op* OpTable::pop_done() {
  if (done_.empty()) return nullptr;
  Op* op = done_.front();
  done_.pop_front();
  return op;
}

std::vector<Op*> OpTable::unreported(int peer) const {
  const auto& set = unreported_[static_cast<std::size_t>(peer)];
  return {set.begin(), set.end()};
}

void OpTable::mark_reported(Op* op) {
  op->reported = true;
  unreported_[static_cast<std::size_t>(op->peer)].erase(op);
}

void OpTable::release_if_finished(Op* op) {
  if (op->reported && op->request == nullptr) ops_.erase(op);
}

std::vector<Op*> OpTable::attached() const {
  std::vector<Op*> out;
  for (const auto& [raw, op] : ops_) {
    if (raw->request != nullptr) out.push_back(raw);
  }
  return out;
}

void OpTable::orphan(Op* op) {
  auto it = ops_.find(op);
  if (it == ops_.end() || op->request == nullptr) return;
  void* request = std::exchange(op->request, nullptr);
  --attached_;
  unreported_[static_cast<std::size_t>(op->peer)].erase(op);
  op->table = nullptr;
  (void)it->second.release();  // see the header: UCX may still call back into it
  ops_.erase(it);
  ucp_request_free(request);
}

}  // namespace tern::transport::ucx
