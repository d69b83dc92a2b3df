// procfix-run: the JSON lines it prints about a stopped server (docs/cli.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "procfix/fixtures/stop_report.hpp"

namespace procfix::run {

// {"status":N} or {"signal":N,"signal_name":"SIGx"}.
nlohmann::json describe_exit(const ExitStatus& status);

// The "stopped" line: {"stopped":true,"ok":...,"cause":...,"pid":...,"exit":...,...,"leaks":[...]}.
// With `details`, also the report's text (if not ok) and the server's stderr tail.
nlohmann::json stopped_line(const StopReport& report, const std::string& cause, bool details);

}  // namespace procfix::run
