// sample_child's server: a TCP line server on Boost.Asio (request workers, graceful drain).
#pragma once

#include <nlohmann/json.hpp>

#include "config.hpp"

namespace sample_child {

// Listens (or takes the activated socket), announces readiness with `ready_fields`, serves until
// a stop signal and drains. Returns the exit status (0 after a clean drain); a drain that
// overran the shutdown deadline ends the process with status 1 itself.
int serve(const Config& config, nlohmann::json ready_fields);

}  // namespace sample_child
