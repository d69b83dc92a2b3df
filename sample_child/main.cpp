// sample_child: a small real TCP line server for the procfix tests, with switches that make it
// misbehave on purpose (sample_child --help, README.md). main() only sequences the parts:
// switches.cpp (the table of switches), diagnostics.cpp, misbehaviour.cpp, server.cpp.
#include <exception>
#include <iostream>

#include "config.hpp"
#include "diagnostics.hpp"
#include "misbehaviour.hpp"
#include "procfix/helpers/ready.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
  using namespace sample_child;
  const Startup startup = capture_startup(argc, argv);  // before anything can change it
  const Config config = parse_arguments(argc, argv);
  try {
    procfix::take_ready_channels();
  } catch (const std::exception& e) {
    std::cerr << "sample_child: " << e.what() << '\n';
    return 1;
  }
  misbehave_before_ready(config, startup.notify_socket);
  return serve(config, ready_fields(config, startup));
}
