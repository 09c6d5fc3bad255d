// The installed UCX's transports and memory types, from a throw-away context.
#include <ucp/api/ucp.h>
#include <ucs/memory/memory_type.h>

#include <cstdio>
#include <cstdlib>

#include "doctor/checks.h"
#include "ucp_config.h"
#include "ucp_context.h"

namespace tern::ibbench {

std::optional<UcxFacts> query_ucx(std::string* error) {
  namespace tx = tern::transport::ucx;
  auto config = tx::UcpConfig::read();
  if (!config) {
    *error = config.status().message();
    return std::nullopt;
  }
  auto context = tx::UcpContext::create(*config, 0);
  if (!context) {
    *error = context.status().message();
    return std::nullopt;
  }
  UcxFacts facts;
  facts.version = tx::UcpContext::version();
  char* text = nullptr;
  std::size_t length = 0;
  if (FILE* stream = open_memstream(&text, &length)) {
    ucp_context_print_info((*context)->get(), stream);
    std::fclose(stream);
    facts.transports = parse_ucx_resources(std::string_view(text, length));
    std::free(text);
  }
  ucp_context_attr_t attr{};
  attr.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES;
  if (ucp_context_query((*context)->get(), &attr) == UCS_OK)
    for (int t = UCS_MEMORY_TYPE_HOST; t < UCS_MEMORY_TYPE_LAST; ++t)
      if ((attr.memory_types & (std::uint64_t{1} << t)) != 0) facts.memory_types.emplace_back(ucs_memory_type_names[t]);
  return facts;
}

}  // namespace tern::ibbench
