// Adversarial child: announces readiness (PROCFIX_READY_FD or NOTIFY_SOCKET) and only then, after
// --handler-delay-ms (default 5), takes charge of SIGTERM; exits 0 on SIGTERM. Like haproxy -Ws.
//   late_handler [--handler-delay-ms=N] [--token=T]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "procfix/helpers/ready.hpp"

int main(int argc, char** argv) {
  int delay_ms = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--handler-delay-ms=", 19) == 0) delay_ms = std::atoi(argv[i] + 19);
  }
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  std::this_thread::sleep_for(std::chrono::milliseconds{delay_ms});  // the misbehaviour
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  int signal = 0;
  sigwait(&stop, &signal);
  return 0;
}
