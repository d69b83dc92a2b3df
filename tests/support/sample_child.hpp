// Test support: options for sample_child, and catching a start that must fail.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "procfix/fixtures/server.hpp"

namespace procfix::testing {

// sample_child with `args`, generous deadlines (they only catch hangs) and default readiness.
inline ServerOptions sample_child(std::vector<std::string> args = {},
                                  Readiness readiness = Readiness::ready_fd()) {
  using namespace std::chrono_literals;
  return ServerOptions{.executable = PROCFIX_SAMPLE_CHILD,
                       .args = std::move(args),
                       .ready_timeout = 60s,
                       .stop_grace = 10s,
                       .readiness = std::move(readiness)};
}

// The same with the readiness mode first.
inline ServerOptions sample_child(Readiness readiness, std::vector<std::string> args = {}) {
  return sample_child(std::move(args), std::move(readiness));
}

// Starts a server that must fail to start, and returns the error.
inline StartError start_failure(ServerOptions options) {
  try {
    Server server{std::move(options)};
  } catch (const StartError& e) {
    return e;
  }
  throw std::logic_error{"the server started although it should not have"};
}

}  // namespace procfix::testing
