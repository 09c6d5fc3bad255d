// The C++ flavour, built with find_package(tern): the header-only wrapper over the installed
// C library. Exit 0 when libtern links and reports the version it was built as.
#include <cstdio>
#include <cstring>
#include <tern/tern.h>
#if __has_include(<tern/tern.hpp>)
#include <tern/tern.hpp>
#endif

int main() {
  const char* version = tern_version();
  std::printf("libtern %s via find_package(tern)\n", version);
  return std::strncmp(version, TERN_EXPECTED_VERSION, std::strlen(TERN_EXPECTED_VERSION)) == 0 ? 0 : 1;
}
