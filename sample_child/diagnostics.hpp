// sample_child's diagnostics (--report-fds, --report-signals, --report-env): what the spawner
// gave it, taken when main() starts, reported as fields of the ready message.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"

namespace sample_child {

// What main() found before it changed anything.
struct Startup {
  std::optional<std::vector<int>> fds;    // with --report-fds: the open fds
  std::optional<nlohmann::json> signals;  // with --report-signals: {"sigblk", "sigign"}
  std::string notify_socket;              // NOTIFY_SOCKET ("" if unset)
};

// Call first in main(): reads argv for the two --report switches only (the full parse comes
// later, so that these see the process exactly as it was spawned).
Startup capture_startup(int argc, char** argv);

// The extra fields of the ready message: --extra-json, "pid", and what the --report switches
// asked for.
nlohmann::json ready_fields(const Config& config, const Startup& startup);

}  // namespace sample_child
