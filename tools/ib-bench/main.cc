// ib-bench: the fabric diagnostic (docs/ib-bench.md).
#include <csignal>
#include <iostream>

#include "cli/cli.h"

int main(int argc, char** argv) {
  // A peer closing the control connection must surface as an error, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  return tern::ibbench::run_cli(argc, argv, std::cout, std::cerr);
}
