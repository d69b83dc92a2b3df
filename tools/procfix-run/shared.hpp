// procfix-run's shared-server modes (docs/shared-servers.md):
//
//   procfix-run --detach --state=FILE [--owner-pid=PID|parent] [--max-lifetime=MS] [OPTION]...
//               -- SERVER [ARG]...
//   procfix-run --stop --state=FILE
//
// --detach forks a keeper (its own session, stdin /dev/null, stdout/stderr FILE.log) that starts
// the server through procfix::Server, writes the ready line (plus a "keeper" object) to FILE
// atomically, and the command prints the ready line and exits 0 while the keeper holds the
// server. The keeper stops the server (whole teardown) and exits when it gets SIGTERM/SIGINT
// (--stop), when the owner process ends, or when the lifetime bound passes; if the server dies
// by itself it records why in FILE. It leaves its StopReport as one JSON line in FILE.stop.json.
// --stop signals the keeper (pidfd), waits for it, prints that line and exits 0 (clean) or 1.
#pragma once

#include <optional>

namespace procfix::run {

// If argv asks for a shared-server mode, runs it and returns procfix-run's exit status;
// otherwise returns nothing and procfix-run goes on as usual.
std::optional<int> run_shared_mode(int argc, char** argv);

// The --help rows of the shared-server modes.
const char* shared_help_text();

}  // namespace procfix::run
