// The arithmetic of ternd's hierarchical allreduce, in one place so that the daemon and the tests
// (and anyone checking results) compute exactly the same bits:
//
//   1. local sum: acc = widen_to_f32(buffer of local rank 0); then acc += widen_to_f32(buffer of
//      local rank i) for i = 1 .. local_size-1, element by element in fp32, in local-rank order
//      (one rounding per addition; the order is fixed, so every node's sum is reproducible);
//   2. inter-node: Communicator::allreduce(acc, fp32, op = SUM, the trainers' codecs and key) among
//      the nodes (node rank = trainer rank / local_size). One node: the same Communicator over an
//      in-process loopback transport, so the codecs apply exactly as with several nodes;
//   3. mean only: acc[i] *= (1.0f / nranks), nranks = trainers of the group (not nodes), one fp32
//      multiplication by the rounded reciprocal;
//   4. narrow to the trainers' dtype with round-to-nearest-even (fp16/bf16; fp32 is copied) and
//      write into every local trainer's buffer: all trainers of all nodes get the same bits. A
//      value that overflows the dtype fails the operation (kNonFinite), on every node alike (they
//      all narrow the same fp32 values), as the engine's own decode does for one trainer per node.
//
// Where the trainers' buffers are all on GPUs, steps 1, 3 and 4 run there (gpu_local_reduce.h)
// with the same arithmetic: fp32 additions in local-rank order, one multiplication, the same
// rounding, so nodes of either kind end bit-identical.
//
// Step 2 alone equals collective::reference_allreduce over the per-node sums with dtype fp32 and
// op SUM (hierarchical_reference() below composes it with the other steps).
//
// One trainer per node (local_size 1) skips steps 1, 3 and 4: the engine runs in place on the
// trainer's buffer with its dtype and op, so the result is exactly the library-mode engine's
// (collective::reference_allreduce over the trainers' buffers), with no extra copy.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tern/common/status.h"
#include "tern/kernels/codec.h"
#include "tern/transport/collective.h"

namespace tern::daemon {

/// Step 1: `inputs` are the local trainers' buffers in local-rank order.
void local_sum(std::span<const void* const> inputs, kernels::DType dtype, std::size_t count, float* acc);
/// Steps 3 and 4 for one output buffer (acc is not modified). kNonFinite when a value overflows
/// `dtype` (out then holds it as Inf).
Status finish_result(const float* acc, std::size_t count, collective::ReduceOp op, int nranks, kernels::DType dtype,
                     void* out);
/// In-place step 3 (mean) on acc.
void scale_for_mean(float* acc, std::size_t count, collective::ReduceOp op, int nranks);
/// Narrowing of step 4; kNonFinite (with the count) when a value overflows `dtype`.
Status narrow_from_f32(const float* acc, std::size_t count, kernels::DType dtype, void* out);

/// What every trainer holds after allreduce number `op` of a group: `inputs[node][local]` are the
/// trainers' buffers (raw bytes of options.dtype) of the group's nodes in node order (the same
/// number per node).
Result<std::vector<std::uint8_t>> hierarchical_reference(
    const std::vector<std::vector<std::vector<std::uint8_t>>>& inputs, std::size_t count,
    const collective::AllreduceOptions& options, const collective::CommunicatorOptions& comm_options,
    std::uint64_t op);

}  // namespace tern::daemon
