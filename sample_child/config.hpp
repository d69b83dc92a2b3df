// sample_child's configuration: what its switches (switches.cpp) set.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sample_child {

struct Config {
  std::string listen = "127.0.0.1:0";
  bool listen_fds = false;
  std::chrono::milliseconds shutdown_deadline{5000};
  int threads = 2;  // --threads: the pool of request workers
  bool report_fds = false;
  bool report_signals = false;
  std::vector<std::string> report_env;
  nlohmann::json extra = nlohmann::json::object();
  std::optional<long> start_delay_ms;
  long stderr_lines = 0;
  long stderr_bytes = 0;
  long stdout_bytes = 0;
  std::optional<int> exit_before_ready;
  std::optional<int> signal_before_ready;
  bool fork_holding_ready_fd = false;
  bool never_ready = false;
  bool close_without_message = false;
  bool malformed_json = false;
  bool no_address = false;
  std::optional<long> oversized_message;
  std::string ready_line;       // "", "stdout" or "stderr"
  std::string leak_grandchild;  // "", "setsid" or "daemon"
  bool ignore_sigterm = false;
  std::optional<int> exit_on_sigterm;
  bool abort_on_sigterm = false;
  bool abort_mid_request = false;
  bool hang_in_shutdown = false;
  bool notify_from_outside = false;
  std::string notify_status;  // --notify-status: sent as STATUS= before readiness
  bool leave_zombie = false;  // --leave-zombie
};

// Parses argv (argv[0] skipped). --help prints the usage and exits 0; a bad switch prints why
// and exits 2.
Config parse_arguments(int argc, char** argv);

// Prints "sample_child: MESSAGE" and the hint to --help on stderr, exits 2.
[[noreturn]] void usage_error(const std::string& message);

}  // namespace sample_child
