#include "tern/daemon/ring.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace tern::daemon::ring {
namespace {

std::uint32_t load(std::uint32_t& v) noexcept {
  return std::atomic_ref<std::uint32_t>(v).load(std::memory_order_acquire);
}
void store(std::uint32_t& v, std::uint32_t x) noexcept {
  std::atomic_ref<std::uint32_t>(v).store(x, std::memory_order_release);
}

}  // namespace

std::size_t ring_bytes(std::uint32_t capacity) noexcept {
  return sizeof(Header) + std::size_t{capacity} * (sizeof(Submission) + sizeof(Completion));
}

Status check_capacity(std::uint32_t capacity) {
  if (capacity == 0 || capacity > kMaxCapacity || (capacity & (capacity - 1)) != 0)
    return invalid_argument("ring capacity " + std::to_string(capacity) + " is not a power of two in [1, " +
                            std::to_string(kMaxCapacity) + "]");
  return Status::ok();
}

RingView::RingView(Header* header, std::uint32_t capacity)
    : header_(header),
      sq_(reinterpret_cast<Submission*>(header + 1)),
      cq_(reinterpret_cast<Completion*>(reinterpret_cast<Submission*>(header + 1) + capacity)),
      capacity_(capacity) {}

Result<RingView> RingView::initialize(void* base, std::size_t bytes, std::uint32_t capacity) {
  TERN_CHECK(check_capacity(capacity));
  if (bytes < ring_bytes(capacity)) return invalid_argument("ring file is too small for its capacity");
  auto* h = static_cast<Header*>(base);
  h->magic = kRingMagic;
  h->version = kRingVersion;
  h->capacity = capacity;
  return RingView(h, capacity);
}

Result<RingView> RingView::attach(void* base, std::size_t bytes, std::uint32_t capacity) {
  if (Status s = check_capacity(capacity); !s) return corrupt_data(s.message());
  if (bytes < ring_bytes(capacity))
    return corrupt_data("ring file is " + std::to_string(bytes) + " bytes, capacity " + std::to_string(capacity) +
                        " needs " + std::to_string(ring_bytes(capacity)));
  auto* h = static_cast<Header*>(base);
  if (load(h->magic) != kRingMagic || load(h->version) != kRingVersion || load(h->capacity) != capacity)
    return corrupt_data("ring header does not match (magic, version or capacity)");
  RingView view(h, capacity);
  // Start from where the client is (a fresh ring: zero); never trust these afterwards.
  view.sq_head_ = load(h->sq_tail);
  view.cq_tail_ = 0;
  if (view.sq_head_ != 0 || load(h->cq_head) != 0 || load(h->cq_tail) != 0 || load(h->sq_head) != 0 ||
      load(h->waiters_spinning) != 0)
    return corrupt_data("ring indices are not zero at hand-over");
  return view;
}

void RingView::push_submission(const Submission& s) noexcept {
  sq_[sq_tail_ & (capacity_ - 1)] = s;
  store(header_->sq_tail, ++sq_tail_);
}

std::size_t RingView::drain_completions(const std::function<void(const Completion&)>& fn) noexcept {
  const std::uint32_t tail = std::atomic_ref<std::uint32_t>(header_->cq_tail).load(std::memory_order_seq_cst);
  std::size_t n = 0;
  while (cq_head_ != tail) {
    Completion c = cq_[cq_head_ & (capacity_ - 1)];
    c.message_bytes = std::min<std::uint32_t>(c.message_bytes, kMessageBytes);
    store(header_->cq_head, ++cq_head_);  // the slot is copied: the daemon may reuse it
    fn(c);
    ++n;
  }
  return n;
}

Result<std::size_t> RingView::drain_submissions(const std::function<void(const Submission&)>& fn) noexcept {
  const std::uint32_t tail = load(header_->sq_tail);
  if (tail - sq_head_ > capacity_)
    return corrupt_data("submission ring tail " + std::to_string(tail) + " is more than " + std::to_string(capacity_) +
                        " entries ahead of the head " + std::to_string(sq_head_));
  std::size_t n = 0;
  while (sq_head_ != tail) {
    Submission s;
    std::memcpy(&s, &sq_[sq_head_ & (capacity_ - 1)], sizeof s);
    store(header_->sq_head, ++sq_head_);
    fn(s);
    ++n;
  }
  return n;
}

Status RingView::push_completion(std::uint64_t user_data, const Status& status) noexcept {
  const std::uint32_t head = load(header_->cq_head);
  if (cq_tail_ - head >= capacity_)
    return corrupt_data("completion ring is full (the client has more than " + std::to_string(capacity_) +
                        " requests in flight or corrupted the ring)");
  Completion& c = cq_[cq_tail_ & (capacity_ - 1)];
  c.user_data = user_data;
  c.status = static_cast<std::uint32_t>(status.code());
  const std::string& m = status.message();
  c.message_bytes = static_cast<std::uint32_t>(std::min(m.size(), kMessageBytes));
  std::memcpy(c.message, m.data(), c.message_bytes);
  std::atomic_ref<std::uint32_t>(header_->cq_tail).store(++cq_tail_, std::memory_order_seq_cst);
  return Status::ok();
}

bool RingView::doorbell_needed() const noexcept {
  return std::atomic_ref<std::uint32_t>(header_->waiters_spinning).load(std::memory_order_seq_cst) == 0;
}

void RingView::start_spinning() noexcept {
  std::atomic_ref<std::uint32_t>(header_->waiters_spinning).fetch_add(1, std::memory_order_seq_cst);
}

void RingView::stop_spinning() noexcept {
  std::atomic_ref<std::uint32_t>(header_->waiters_spinning).fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace tern::daemon::ring
