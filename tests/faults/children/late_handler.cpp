// Adversarial child: announces readiness (PROCFIX_READY_FD or NOTIFY_SOCKET) and only then, after
// --handler-delay-ms (default 5), takes charge of SIGTERM; exits 0 on SIGTERM. Like haproxy -Ws.
//   late_handler [--handler-delay-ms=N] [--token=T]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "procfix/helpers/ready.hpp"

int main(int argc, char** argv) {
  int delay_ms = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--handler-delay-ms=", 19) == 0) delay_ms = std::atoi(argv[i] + 19);
  }
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  // The misbehaviour: work (not a sleep) between the announcement and the handler, a few
  // milliseconds of system calls, as a server's remaining initialisation would be.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{delay_ms};
  while (std::chrono::steady_clock::now() < until) (void)::getppid();
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  int signal = 0;
  sigwait(&stop, &signal);
  return 0;
}
