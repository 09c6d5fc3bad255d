// Verbs measurement engine: one RC queue pair per side, perftest's ib_write_bw / ib_send_bw /
// ib_write_lat / ib_send_lat methods over the same control protocol as the UCX engine
// (perf/session.h), with the QP attributes (QPN, PSN, LID, GID, buffer address, rkey, MTU) in the
// hello/welcome messages instead of a UCX address.
//
//   WRITE bw: the sender keeps `window` signalled RDMA WRITEs in flight; one-sided, the receiver
//             only waits. SEND bw: the receiver keeps receives posted; the sender ends each round
//             with a 0-byte SEND with immediate data, which the receiver counts as END.
//   WRITE lat: ping-pong through the last byte of each side's buffer (a sequence number 1..255,
//             0 = end), polled by the CPU (host memory only). SEND lat: SEND/RECV ping-pong.
//
// Compiled everywhere; without devices every entry point fails with "no RDMA devices: ..."
// (is_no_rdma) before touching the network.
#pragma once

#include <nlohmann/json.hpp>

#include "perf/control.h"
#include "perf/session.h"
#include "tern/common/status.h"

namespace tern::ibbench {

/// Opens the configured device (or fails: no devices, unknown name, port not ACTIVE).
Status verbs_precheck(const SessionConfig& config);

Result<SessionReport> verbs_client(ControlChannel& channel, const SessionConfig& config, const RowSink& sink);

/// `perf`: the options both sides agreed on (already compared); `hello` carries the client's QP.
Result<SessionReport> verbs_serve(ControlChannel& channel, const nlohmann::json& hello, const PerfOptions& perf,
                                  const SessionConfig& config, const RowSink& sink);

}  // namespace tern::ibbench
