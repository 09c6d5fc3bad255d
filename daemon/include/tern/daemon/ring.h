// The data path between libtern and ternd: per-client submission and completion rings in one
// shared-memory file (a sealed memfd the client creates and passes in Hello), with an eventfd
// doorbell in each direction. An allreduce costs the client one ring write plus one eventfd
// write, and the daemon the same back: no socket round trip per operation.
//
// Layout of the memfd (ring_bytes(capacity) bytes):
//   Header (4 cache lines: each index on its own line)
//   Submission[capacity]   written by the client, read by the daemon
//   Completion[capacity]   written by the daemon, read by the client
// Indices are free-running u32 counters (slot = index % capacity, capacity a power of two).
// sq_tail/cq_head are written by the client, sq_head/cq_tail by the daemon, with release stores
// after the slot's bytes and acquire loads before reading them.
//
// Trust: the daemon treats everything in the shared file as hostile. It keeps its own copies of
// the indices it writes, re-checks the client's index against them (at most `capacity` ahead),
// copies each Submission out of shared memory before validating it (so the client cannot change
// it after the check), and the memfd is sealed against shrinking (no SIGBUS on access).
//
// Thread safety: one producer and one consumer per ring direction; callers serialize.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "tern/common/status.h"

namespace tern::daemon::ring {

inline constexpr std::uint32_t kRingMagic = 0x474E4952;  // "RING"
inline constexpr std::uint32_t kRingVersion = 2;
inline constexpr std::uint32_t kMaxCapacity = 4096;
inline constexpr std::size_t kMessageBytes = 240;

enum class MemoryKind : std::uint8_t { kHostArena = 0, kCuda = 1 };

struct alignas(64) Header {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t capacity;
  std::uint32_t reserved;
  alignas(64) std::uint32_t sq_tail;
  alignas(64) std::uint32_t sq_head;
  alignas(64) std::uint32_t cq_tail;
  alignas(64) std::uint32_t cq_head;
  /// Client threads currently spinning on the completion ring (tern_wait's first microseconds).
  /// While it is non-zero the daemon skips the completion doorbell: a spinning waiter sees the
  /// entry anyway, and the eventfd write plus the wake-up of the client's completion thread cost
  /// more than the operation. Ordering: the daemon publishes cq_tail then reads this (both seq_cst);
  /// a waiter decrements it then re-reads cq_tail (both seq_cst): one of them sees the other.
  alignas(64) std::uint32_t waiters_spinning;
};

/// One allreduce request. Every field is validated by the daemon before use.
struct Submission {
  std::uint64_t user_data;     ///< the client's request id, echoed in the completion
  std::uint32_t group_handle;  ///< from the GroupJoin reply (per client)
  std::uint32_t memory_id;     ///< arena id (kHostArena) or CUDA registration id (kCuda)
  std::uint64_t offset;        ///< bytes from the start of that memory
  std::uint64_t count;         ///< elements of dtype
  std::uint8_t dtype;          ///< tern::kernels::DType
  std::uint8_t op;             ///< tern::collective::ReduceOp
  std::uint8_t scatter_codec;  ///< tern::kernels::Codec
  std::uint8_t gather_codec;
  std::uint8_t memory_kind;    ///< MemoryKind
  std::uint8_t pad[3];
  std::uint32_t timeout_ms;    ///< 0: the daemon's default
  std::uint32_t reserved;
  std::uint64_t tensor_key;
  std::uint64_t reserved2;
};
static_assert(sizeof(Submission) == 64);

struct Completion {
  std::uint64_t user_data;
  std::uint32_t status;         ///< tern::StatusCode
  std::uint32_t message_bytes;  ///< <= kMessageBytes
  char message[kMessageBytes];  ///< not NUL-terminated
};
static_assert(sizeof(Completion) == 256);

/// Bytes of the shared file for `capacity` entries per direction.
std::size_t ring_bytes(std::uint32_t capacity) noexcept;
/// kInvalidArgument unless capacity is a power of two in [1, kMaxCapacity].
Status check_capacity(std::uint32_t capacity);

/// A view of a mapped ring file (does not own the mapping).
class RingView {
 public:
  RingView() = default;
  /// Client side: writes a fresh header into `base` (ring_bytes(capacity) bytes, zeroed).
  static Result<RingView> initialize(void* base, std::size_t bytes, std::uint32_t capacity);
  /// Daemon side: checks the header the client wrote against `capacity` and the file size.
  static Result<RingView> attach(void* base, std::size_t bytes, std::uint32_t capacity);

  std::uint32_t capacity() const noexcept { return capacity_; }

  // ---- client: submission producer, completion consumer ----
  /// Publishes one submission. The caller guarantees space (at most `capacity` requests in flight).
  void push_submission(const Submission& s) noexcept;
  /// Calls `fn` for every new completion; returns how many.
  std::size_t drain_completions(const std::function<void(const Completion&)>& fn) noexcept;
  /// A waiter starts / stops spinning (see Header::waiters_spinning). After stop_spinning() the
  /// caller must drain once more before it sleeps.
  void start_spinning() noexcept;
  void stop_spinning() noexcept;

  // ---- daemon: submission consumer, completion producer ----
  /// Copies every new submission out and calls `fn`. kCorruptData when the client's tail is more
  /// than `capacity` ahead (a corrupted or hostile ring).
  Result<std::size_t> drain_submissions(const std::function<void(const Submission&)>& fn) noexcept;
  /// Publishes a completion. kCorruptData if the ring is full (the client let more requests be in
  /// flight than it may, or corrupted cq_head).
  Status push_completion(std::uint64_t user_data, const Status& status) noexcept;
  /// After push_completion: whether the client needs the completion doorbell (no waiter spinning).
  bool doorbell_needed() const noexcept;

 private:
  RingView(Header* header, std::uint32_t capacity);
  Header* header_ = nullptr;
  Submission* sq_ = nullptr;
  Completion* cq_ = nullptr;
  std::uint32_t capacity_ = 0;
  // Private copies of the indices this side owns (never re-read from shared memory).
  std::uint32_t sq_tail_ = 0, cq_head_ = 0;  // client
  std::uint32_t sq_head_ = 0, cq_tail_ = 0;  // daemon
};

}  // namespace tern::daemon::ring
