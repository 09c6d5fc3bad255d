// UcxLocalWorker: the public face of LocalState.
#include <utility>

#include "env_defaults.h"
#include "local_state.h"
#include "ucp_config.h"

namespace tern::transport {

namespace ucx {

Result<std::unique_ptr<LocalState>> LocalState::create(const UcxOptions& options) {
  if (options.close_timeout.count() < 0) return invalid_argument("UcxOptions::close_timeout is negative");
  if (options.poll_slice.count() <= 0) return invalid_argument("UcxOptions::poll_slice must be positive");

  auto state = std::make_unique<LocalState>();
  state->options = options;
  TERN_ASSIGN_OR_RETURN(UcpConfig config, UcpConfig::read());
  if (options.apply_env_defaults) {
    for (const UcxSetting& s : defaults_to_apply(options, &process_env)) {
      TERN_CHECK(config.modify(s.name, s.value));
      state->applied.push_back(s.name + "=" + s.value);
    }
  }
  for (const UcxSetting& s : options.config) {
    TERN_CHECK(config.modify(s.name, s.value));
    state->applied.push_back(s.name + "=" + s.value);
  }
  TERN_ASSIGN_OR_RETURN(state->context, UcpContext::create(config, options.estimated_endpoints));
  TERN_ASSIGN_OR_RETURN(state->worker, UcpWorker::create(*state->context));
  return state;
}

}  // namespace ucx

Result<UcxLocalWorker> UcxLocalWorker::create(const UcxOptions& options) {
  TERN_ASSIGN_OR_RETURN(auto state, ucx::LocalState::create(options));
  return UcxLocalWorker(std::move(state));
}

UcxLocalWorker::UcxLocalWorker(std::unique_ptr<ucx::LocalState> state) : state_(std::move(state)) {}
UcxLocalWorker::UcxLocalWorker(UcxLocalWorker&&) noexcept = default;
UcxLocalWorker& UcxLocalWorker::operator=(UcxLocalWorker&&) noexcept = default;
UcxLocalWorker::~UcxLocalWorker() = default;

const std::vector<std::byte>& UcxLocalWorker::address() const { return state_->worker->address(); }
bool UcxLocalWorker::cuda_memory() const { return state_->context->cuda_memory(); }
std::string UcxLocalWorker::ucx_version() const { return ucx::UcpContext::version(); }
std::vector<std::string> UcxLocalWorker::applied_settings() const { return state_->applied; }

}  // namespace tern::transport
