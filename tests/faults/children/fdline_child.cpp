// Adversarial child for the fd_line and NOTIFY_SOCKET fault cases (tests/faults/fd_line_test.cpp).
// fdline_child <mode> [args]: writes what the mode says, then waits for SIGTERM and exits 0
// (unless the mode says it exits).
//   other-line          fd 3: "starting\n" (never the line the test waits for)
//   close-fd            closes fd 3 without writing anything
//   half-line           fd 3: "12" (no newline), then exits 7
//   overlong N          fd 3: N 'x' + "READY 1\n", then "READY 2\n"
//   overlong-open N     fd 3: N 'x' without a newline, then closes fd 3
//   bad-utf8            fd 3: "display \xff\xfe=:5\n"
//   bare-newline        fd 3: "\n" (s6's notification-fd protocol)
//   extend USEC MS      NOTIFY_SOCKET: EXTEND_TIMEOUT_USEC=USEC; sleeps MS ms, then READY=1
//                       (MS < 0: never)
//   errno-exit          NOTIFY_SOCKET: "STATUS=bind failed\nERRNO=98\nMAINPID=<pid>", exits 1
//   errno-ready         NOTIFY_SOCKET: "ERRNO=5\nMAINPID=<pid>\nREADY=1"
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "child_io.hpp"

namespace {

using procfix::fault_child::notify;
using procfix::fault_child::wait_for_sigterm;
using procfix::fault_child::write_all;

// The misbehaviour "takes this long": work (not a sleep), as a slow initialisation would be.
void work_for_ms(long ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{ms};
  while (std::chrono::steady_clock::now() < until) (void)::getppid();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string_view mode = argv[1];
  const std::string pid = std::to_string(::getpid());
  if (mode == "other-line") {
    write_all(3, "starting\n");
  } else if (mode == "close-fd") {
    ::close(3);
  } else if (mode == "half-line") {
    write_all(3, "12");
    std::_Exit(7);
  } else if (mode == "overlong" && argc > 2) {
    write_all(3, std::string(std::strtoul(argv[2], nullptr, 10), 'x') + "READY 1\n");
    write_all(3, "READY 2\n");
  } else if (mode == "overlong-open" && argc > 2) {
    write_all(3, std::string(std::strtoul(argv[2], nullptr, 10), 'x'));
    ::close(3);
  } else if (mode == "bad-utf8") {
    write_all(3, "display \xff\xfe=:5\n");
  } else if (mode == "bare-newline") {
    write_all(3, "\n");
  } else if (mode == "extend" && argc > 3) {
    notify(std::string{"EXTEND_TIMEOUT_USEC="} + argv[2]);
    const long ms = std::strtol(argv[3], nullptr, 10);
    if (ms >= 0) {
      work_for_ms(ms);
      notify("READY=1");
    }
  } else if (mode == "errno-exit") {
    notify("STATUS=bind failed\nERRNO=98\nMAINPID=" + pid);
    std::_Exit(1);
  } else if (mode == "errno-ready") {
    notify("ERRNO=5\nMAINPID=" + pid + "\nREADY=1");
  } else {
    return 2;
  }
  wait_for_sigterm();
}
