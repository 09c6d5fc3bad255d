/* libtern: the C API trainers link to hand gradients to the node's ternd.
 *
 * Model (like NCCL's, with a daemon in the middle):
 *   - Every node runs one ternd. A trainer process connects to it (tern_connect), joins a group
 *     of `nranks` trainers from a unique id (made once by one trainer with tern_get_unique_id and
 *     shared by the training framework, e.g. through torch.distributed's store or an env var),
 *     and submits allreduces on buffers the daemon can reach.
 *   - The daemon sums the buffers of all local trainers of a group first, runs one compressed
 *     inter-node allreduce (reduce-scatter + allgather, see docs/collective.md) among the nodes,
 *     and writes the result into every local trainer's buffer. Every trainer of the group ends
 *     with bit-identical results, or every trainer gets an error.
 *   - Trainers on a node must hold consecutive global ranks, the same number on every node
 *     (torchrun's default layout): node k holds ranks k*local_size .. k*local_size+local_size-1.
 *
 * Memory the daemon can reach:
 *   - Host memory from tern_alloc(): a shared-memory arena (memfd passed to the daemon), zero copy.
 *   - Host memory registered with tern_register(): libtern stages it through its arena (one
 *     memcpy each way); the daemon runs as another user and cannot read a trainer's address space.
 *   - CUDA device memory registered with tern_register(): passed as a CUDA IPC handle, mapped once
 *     by the daemon; codecs run on the GPU in place (build with CUDA; TERN_UNAVAILABLE otherwise).
 *
 * Errors: every function returns a tern_status_t. When it is not TERN_OK, tern_last_error() gives
 * a message for the calling thread that says what went wrong and where ("allreduce 12 of group
 * 3f2a: rank 5 on host node-b left"). A failed request's message is tern_request_error().
 *
 * Thread safety: every function may be called from any thread, concurrently, on the same client,
 * group and requests, except: a handle must not be used during or after the call that frees it
 * (tern_disconnect, tern_group_destroy, tern_request_free, tern_free, tern_deregister).
 * Requests complete in submission order per group.
 *
 * ABI: symbols are versioned by the soname (libtern.so.TERN_ABI_VERSION). Structs passed in carry
 * their own size (`struct_size`) so fields can be appended without breaking old binaries.
 */
#ifndef TERN_TERN_H_
#define TERN_TERN_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define TERN_API __attribute__((visibility("default")))
#else
#define TERN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define TERN_ABI_VERSION 0
#define TERN_VERSION_MAJOR 0
#define TERN_VERSION_MINOR 1
#define TERN_VERSION_PATCH 0

/** Status codes. 1..8 equal tern::StatusCode (common/include/tern/common/status.h). */
typedef enum tern_status {
  TERN_OK = 0,
  TERN_INVALID_ARGUMENT = 1, /**< malformed arguments (sizes, pointers, options) */
  TERN_CORRUPT_DATA = 2,     /**< bytes from outside failed validation */
  TERN_NON_FINITE = 3,       /**< the input held NaN/Inf (on any trainer of the group) */
  TERN_OUT_OF_RANGE = 4,     /**< a value or size exceeds a limit */
  TERN_UNAVAILABLE = 5,      /**< no ternd at the socket, ternd went away, no GPU support */
  TERN_TIMEOUT = 6,          /**< a deadline passed */
  TERN_PEER_FAILURE = 7,     /**< another trainer or node died, left or misbehaved */
  TERN_INTERNAL = 8,         /**< a bug in tern */
  TERN_IN_PROGRESS = 9,      /**< tern_test/tern_wait: the request has not completed yet */
} tern_status_t;

typedef enum tern_dtype { TERN_FLOAT32 = 0, TERN_FLOAT16 = 1, TERN_BFLOAT16 = 2 } tern_dtype_t;

/** Wire codecs (docs/codecs.md); values equal tern::kernels::Codec. */
typedef enum tern_codec {
  TERN_CODEC_FP32 = 0,
  TERN_CODEC_FP16 = 1,
  TERN_CODEC_BF16 = 2,
  TERN_CODEC_TERNGRAD = 3,   /**< unbiased stochastic ternary */
  TERN_CODEC_TERNARY_EF = 4, /**< threshold ternary with error feedback (per tensor key) */
  TERN_CODEC_SIGN_EF = 5,    /**< 1-bit sign with error feedback (per tensor key) */
} tern_codec_t;

typedef enum tern_reduce_op { TERN_SUM = 0, TERN_MEAN = 1 } tern_reduce_op_t;

typedef struct tern_client tern_client_t;   /**< a connection to the local ternd */
typedef struct tern_group tern_group_t;     /**< membership of one trainer in a group */
typedef struct tern_request tern_request_t; /**< one submitted allreduce */

/** A group's unique id in text form (`tern1:HOST:PORT:SECRET`, NUL-terminated). It contains the
 *  group secret: treat it as a credential (never log it). */
#define TERN_UNIQUE_ID_MAX 256
typedef struct tern_unique_id {
  char text[TERN_UNIQUE_ID_MAX];
} tern_unique_id_t;

/** "0.1.0"; never NULL. */
TERN_API const char* tern_version(void);
/** The calling thread's message for its last failed call ("" if none). Valid until the thread's
 *  next libtern call. */
TERN_API const char* tern_last_error(void);
/** "ok", "invalid argument", ... ; never NULL. */
TERN_API const char* tern_status_name(tern_status_t status);

/* ---- connection ---------------------------------------------------------------------------- */

/** Connects to the local ternd. `socket_path` NULL: $TERN_SOCKET, else /run/tern/ternd.sock.
 *  TERN_UNAVAILABLE (with the path and errno in tern_last_error) when no daemon listens. */
TERN_API tern_status_t tern_connect(const char* socket_path, tern_client_t** client);
/** Closes the connection. Pending requests fail with TERN_UNAVAILABLE; groups are left; arenas
 *  are unmapped. Handles of this client must not be used afterwards (free them first or not). */
TERN_API void tern_disconnect(tern_client_t* client);

/* ---- groups -------------------------------------------------------------------------------- */

/** Makes a fresh unique id whose rendezvous is hosted by this node's ternd (call it on the node of
 *  global rank 0, then share the text with every trainer). */
TERN_API tern_status_t tern_get_unique_id(tern_client_t* client, tern_unique_id_t* id);

typedef struct tern_group_config {
  uint32_t struct_size;   /**< sizeof(tern_group_config_t) */
  int32_t rank;           /**< this trainer's global rank, 0..nranks-1 */
  int32_t nranks;         /**< trainers in the group, over all nodes */
  int32_t local_size;     /**< trainers of the group on this node (divides nranks) */
  uint32_t timeout_ms;    /**< formation deadline; 0: the daemon's default (30 s) */
  uint64_t seed;          /**< terngrad rounding seed; 0: derived from the id (same on all ranks) */
} tern_group_config_t;

/** Joins the group `id` and blocks until every trainer of every node joined (or the deadline).
 *  TERN_INVALID_ARGUMENT for inconsistent rank/nranks/local_size; TERN_TIMEOUT names missing
 *  ranks; TERN_PEER_FAILURE when the secret is wrong. */
TERN_API tern_status_t tern_group_join(tern_client_t* client, const tern_unique_id_t* id,
                                       const tern_group_config_t* config, tern_group_t** group);
/** Leaves the group (other members' pending and later operations fail, naming this rank) and
 *  frees the handle. */
TERN_API void tern_group_destroy(tern_group_t* group);
TERN_API int tern_group_rank(const tern_group_t* group);
TERN_API int tern_group_size(const tern_group_t* group);

/* ---- memory -------------------------------------------------------------------------------- */

/** Allocates `bytes` of host memory shared with the daemon (zero-copy allreduce), 64-byte
 *  aligned. Free with tern_free(). */
TERN_API tern_status_t tern_alloc(tern_client_t* client, size_t bytes, void** ptr);
TERN_API tern_status_t tern_free(tern_client_t* client, void* ptr);

/** Makes [ptr, ptr+bytes) usable by tern_allreduce: host memory not from tern_alloc (staged
 *  through a shared arena), or CUDA device memory (CUDA IPC). Registering memory from tern_alloc
 *  is a no-op. Overlapping registrations are TERN_INVALID_ARGUMENT. */
TERN_API tern_status_t tern_register(tern_client_t* client, void* ptr, size_t bytes);
TERN_API tern_status_t tern_deregister(tern_client_t* client, void* ptr);

/* ---- allreduce ----------------------------------------------------------------------------- */

typedef struct tern_allreduce_args {
  uint32_t struct_size;        /**< sizeof(tern_allreduce_args_t) */
  void* buffer;                /**< in place; inside memory from tern_alloc or tern_register */
  size_t count;                /**< elements of `dtype` */
  tern_dtype_t dtype;
  tern_reduce_op_t op;         /**< TERN_MEAN divides by nranks (all trainers) */
  tern_codec_t scatter_codec;  /**< reduce-scatter direction: each node's local sum */
  tern_codec_t gather_codec;   /**< allgather direction: the reduced shards, re-encoded */
  uint64_t tensor_key;         /**< error-feedback residuals are kept per (group, key) */
  uint32_t timeout_ms;         /**< 0: the daemon's default (30 s) */
} tern_allreduce_args_t;

/** Fills `args` with defaults: fp32, mean, terngrad both ways, key 0, daemon's timeout. */
TERN_API void tern_allreduce_args_init(tern_allreduce_args_t* args);

/** Submits an in-place allreduce; returns at once. Every trainer of the group must submit the same
 *  (count, dtype, op, codecs, key) in the same order: a mismatch fails the operation everywhere,
 *  naming the ranks and values. The buffer must not be touched until the request completes. */
TERN_API tern_status_t tern_allreduce(tern_group_t* group, const tern_allreduce_args_t* args,
                                      tern_request_t** request);
/** TERN_OK when done (the buffer holds the result), TERN_IN_PROGRESS when not yet, or the error. */
TERN_API tern_status_t tern_test(tern_request_t* request);
/** Waits up to `timeout_ms` (< 0: until the request's own deadline). TERN_IN_PROGRESS if still
 *  pending when the wait's timeout ends (the request itself stays valid). */
TERN_API tern_status_t tern_wait(tern_request_t* request, int timeout_ms);
/** The message of a failed request ("" while pending or after success). */
TERN_API const char* tern_request_error(const tern_request_t* request);
/** Frees a completed or failed request. A pending one is waited for first. */
TERN_API void tern_request_free(tern_request_t* request);

/** Blocking convenience: tern_allreduce + tern_wait + tern_request_free. */
TERN_API tern_status_t tern_allreduce_sync(tern_group_t* group, const tern_allreduce_args_t* args);

/* ---- diagnostics --------------------------------------------------------------------------- */

/** The daemon's status as JSON (what `ternctl status --json` prints: clients, groups, members, ops
 *  in flight, bytes per codec, recent errors). Writes at most `capacity` bytes including the NUL
 *  to `buffer`; `*length` gets the full length without the NUL. TERN_OUT_OF_RANGE (with `*length`
 *  set) when the buffer is too small: call again with `*length + 1` bytes. */
TERN_API tern_status_t tern_daemon_status(tern_client_t* client, char* buffer, size_t capacity, size_t* length);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TERN_TERN_H_ */
