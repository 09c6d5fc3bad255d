// The C++ flavour, built with find_package(tern): the header-only wrapper over the installed C
// library. Exit 0 when libtern reports the version the package promised and the wrapper turns a
// failed connection into tern::Error carrying TERN_UNAVAILABLE.
#include <cstdio>
#include <cstring>
#include <tern/tern.hpp>

int main() {
  const char* version = tern_version();
  std::printf("libtern %s via find_package(tern)\n", version);
  if (std::strcmp(version, TERN_EXPECTED_VERSION) != 0) return 1;
  try {
    tern::Client client("/nonexistent/ternd.sock");
  } catch (const tern::Error& e) {
    std::printf("tern::Error as expected: %s\n", e.what());
    return e.status() == TERN_UNAVAILABLE ? 0 : 1;
  }
  std::printf("connecting to a missing socket did not throw\n");
  return 1;
}
