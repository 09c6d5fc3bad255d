// The plug point between the collective engine and the fabrics: one rank's tagged, asynchronous,
// point-to-point messaging with every other rank of a group. Implementations are sibling folders
// (transport/ucx/, transport/loopback/); the engine sees only this interface.
//
// Concurrency contract:
//  - A Transport is driven by ONE thread (the group's progress thread). No method is thread-safe
//    except wake(), which any thread may call to interrupt a progress() that is waiting.
//  - Completion callbacks run on that thread, from inside progress() — never from send()/recv()
//    themselves (an operation that completes immediately is reported at the next progress()).
//  - Callbacks may post new sends and receives; they must not destroy the Transport.
//  - Every posted operation completes exactly once: successfully, or with an error Status when its
//    peer failed (kPeerFailure, naming the rank and host), it was cancelled, or the transport was
//    shut down. No operation is silently dropped, so an engine waiting on completions never hangs
//    as long as it also enforces its own deadline (silent peers: see fail_peer()).
//  - Buffers passed to send()/recv() must stay valid and untouched until their completion.
//  - Messages between one pair of ranks with the same tag are matched in posting order.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "tern/common/status.h"

namespace tern::transport {

/// Identifies a message between a pair of ranks. The collective engine encodes (operation sequence,
/// phase, chunk index) into it; transports treat it as an opaque 64-bit value.
using Tag = std::uint64_t;

/// Result of one send or receive.
struct Completion {
  Status status;           ///< ok, or why it failed
  std::size_t bytes = 0;   ///< bytes transferred (for a receive: the message length)
};
using CompletionFn = std::function<void(const Completion&)>;

/// Where buffers may live and what the transport uses underneath.
enum class MemoryKind : std::uint8_t { kHost = 0, kCuda = 1 };

struct Capabilities {
  bool cuda_memory = false;   ///< send()/recv() accept CUDA device pointers (GPUDirect RDMA or CUDA-aware copies)
  std::string description;    ///< what was picked, e.g. "ucx 1.13.1 [tcp/lo, posix, cma]"
};

class Transport {
 public:
  virtual ~Transport() = default;
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "rank 2 (host n2)" style name of a peer, for error messages.
  virtual std::string peer_name(int peer) const = 0;
  virtual Capabilities capabilities() const = 0;

  /// Posts a send of `length` bytes to `peer`. kInvalidArgument for a bad peer (or self); a failed
  /// peer completes the operation with its failure Status (via the callback, not the return).
  virtual Status send(int peer, Tag tag, const void* data, std::size_t length, MemoryKind memory,
                      CompletionFn done) = 0;

  /// Posts a receive of the message from `peer` with `tag` into `data`. A message longer than
  /// `capacity` completes the receive with kCorruptData (it is never written past `capacity`).
  virtual Status recv(int peer, Tag tag, void* data, std::size_t capacity, MemoryKind memory,
                      CompletionFn done) = 0;

  /// Runs completion callbacks that are ready; waits up to `max_wait` for at least one event when
  /// none is ready (0: poll once). Returns an error only if the transport itself broke.
  virtual Status progress(std::chrono::milliseconds max_wait) = 0;

  /// Completes every pending operation with `peer` with `reason` and makes later operations with it
  /// fail the same way. Used by the engine when a peer misses its deadline or heartbeats.
  virtual void fail_peer(int peer, const Status& reason) = 0;

  /// Thread-safe: makes a concurrent or the next progress() return promptly.
  virtual void wake() = 0;
};

}  // namespace tern::transport
