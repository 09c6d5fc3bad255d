// Hex encoding of binary blobs (UCX worker addresses) inside the JSON control messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tern/common/status.h"

namespace tern::ibbench {

std::string to_hex(const std::vector<std::byte>& bytes);
/// kCorruptData for odd lengths or non-hex characters (the text comes from the peer).
Result<std::vector<std::byte>> from_hex(std::string_view text);

}  // namespace tern::ibbench
