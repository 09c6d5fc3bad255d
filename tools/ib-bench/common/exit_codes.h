// ib-bench's process exit codes (documented in docs/ib-bench.md; scripts branch on them).
#pragma once

namespace tern::ibbench {

enum ExitCode : int {
  kExitOk = 0,           ///< success; `check`: every check passed
  kExitError = 1,        ///< a runtime failure: network, UCX, peer, deadline, options differing from the peer's
  kExitUsage = 2,        ///< bad command line (unknown option, bad value, missing argument)
  kExitNoRdma = 3,       ///< no RDMA devices (kernel without RDMA, or no adapter)
  kExitCheckWarn = 4,    ///< `check`: the worst result is WARN
  kExitCheckFail = 5,    ///< `check`: the worst result is FAIL
  kExitSlowLinks = 6,    ///< `all-pairs`: at least one link below the threshold
  kExitUnavailable = 7,  ///< other hardware or support absent: CUDA memory without CUDA, no GPU
};

}  // namespace tern::ibbench
