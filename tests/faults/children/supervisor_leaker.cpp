// Adversarial child: leaves <count> children behind, each sleeping for a minute (they end by
// themselves in the end, so that a broken sweep cannot leave them forever).
//
// Usage: supervisor_leaker <token> <count> [<padding bytes>]
//   The children are forked without exec, so each one's command line is this one's: the token
//   and, if given, an argument of <padding bytes> 'x's (long command lines).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <procfix/helpers/ready.hpp>

int main(int argc, char** argv) {
  procfix::take_ready_channels();
  const int count = argc > 2 ? std::atoi(argv[2]) : 0;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  int ready[2];
  if (::pipe(ready) != 0) return 1;
  for (int i = 0; i < count; ++i) {
    if (::fork() == 0) {
      ::close(ready[0]);
      ::close(ready[1]);  // the parent sees EOF once every child has got this far
      ::pause();          // the misbehaviour: still running when the server is stopped
      _exit(0);
    }
  }
  ::close(ready[1]);
  char byte;
  while (::read(ready[0], &byte, 1) > 0) {
  }
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  int signal = 0;
  ::sigwait(&stop_signals, &signal);
  return 0;
}
