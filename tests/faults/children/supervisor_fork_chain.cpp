// Adversarial child: once ready, starts a fork chain (each link forks its successor and exits at
// once) and keeps it running until the server is stopped. A link lives only microseconds.
//
// Usage: supervisor_fork_chain <token> [--setsid]
//   <token>   carried on the command line, so every link can be found with survivors_with()
//   --setsid  every link also calls setsid(), leaving the server's process group and session
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <procfix/helpers/ready.hpp>

int main(int argc, char** argv) {
  procfix::take_ready_channels();
  const bool new_session = argc > 2 && std::strcmp(argv[2], "--setsid") == 0;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  const pid_t first = ::fork();
  if (first == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (;;) {
      if (new_session) (void)::setsid();
      const pid_t next = ::fork();
      if (next > 0) _exit(0);  // the successor goes on; this link ends at once
      // next == 0: this is the successor. next < 0 (EAGAIN): try again.
    }
  }
  ::waitpid(first, nullptr, 0);
  int signal = 0;
  ::sigwait(&stop_signals, &signal);
  return 0;
}
