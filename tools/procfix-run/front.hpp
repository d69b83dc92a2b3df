// procfix-run's front process: it owns stdout and the stop signals, and runs the server's whole
// life (procfix::Server) in a worker process it can kill (front.cpp).
//
// Why a second process: procfix::Server's constructor blocks until the server is ready and has
// no way to be cancelled. SIGTERM/SIGINT during that wait must still end the start at once: the
// front then SIGKILLs the worker, whose death closes its lifeline to procfix-supervisor, which
// kills and reaps the server and everything it started; the front, a child subreaper, inherits
// the supervisor and waits for it (and anything else left) before it exits. So when procfix-run
// exits, nothing it started is running.
#pragma once

#include <functional>

namespace procfix::run {

// Exit status of an interrupted start (SIGTERM/SIGINT before the ready line).
inline constexpr int kExitStartFailed = 3;

// Runs `worker(lines_fd)` in a forked child and returns the exit status procfix-run should exit
// with. The worker writes its JSON lines ('\n'-terminated) to `lines_fd`; the front copies them
// to stdout, so that a line is printed only while the start has not been interrupted. The first
// line is the ready line: from then on SIGTERM/SIGINT are forwarded to the worker (which stops the
// server and writes its report). Before it, they kill the worker: exit status 3.
//
// Preconditions: single-threaded; SIGTERM and SIGINT blocked (the worker inherits the mask).
int run_in_worker(const std::function<int(int lines_fd)>& worker);

}  // namespace procfix::run
