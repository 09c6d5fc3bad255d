// What UcxLocalWorker holds and UcxTransport takes over: the options, the context and the worker.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tern/transport/ucx.h"
#include "ucp_context.h"
#include "ucp_worker.h"

namespace tern::transport::ucx {

class LocalState {
 public:
  /// Reads the configuration, applies defaults and options.config, creates context and worker.
  static Result<std::unique_ptr<LocalState>> create(const UcxOptions& options);

  UcxOptions options;
  std::vector<std::string> applied;     // "NAME=value" set on top of the environment
  std::unique_ptr<UcpContext> context;
  std::unique_ptr<UcpWorker> worker;    // declared after the context: destroyed before it
};

}  // namespace tern::transport::ucx
