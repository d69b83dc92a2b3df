#include "report.hpp"

#include <chrono>

namespace procfix::run {

nlohmann::json describe_exit(const ExitStatus& status) {
  if (status.is_exit()) return {{"status", status.code()}};
  return {{"signal", status.signal()}, {"signal_name", signal_name(status.signal())}};
}

nlohmann::json stopped_line(const StopReport& report, const std::string& cause, bool details) {
  nlohmann::json leaks = nlohmann::json::array();
  for (const LeakedProcess& leak : report.leaks) {
    leaks.push_back({{"pid", leak.pid}, {"command_line", leak.command_line}});
  }
  nlohmann::json line = {
      {"stopped", true},
      {"ok", report.ok()},
      {"cause", cause},
      {"pid", report.pid},
      {"exit", describe_exit(report.status)},
      {"needed_kill", report.needed_kill},
      {"exited_before_stop", report.exited_before_stop},
      {"stop_ms", std::chrono::duration<double, std::milli>(report.stop_duration).count()},
      {"leaks", std::move(leaks)},
  };
  if (details) {
    line["report"] = report.ok() ? std::string{} : report.describe();
    line["stderr_tail"] = report.stderr_tail;
  }
  return line;
}

}  // namespace procfix::run
