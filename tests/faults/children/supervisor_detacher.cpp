// Adversarial child: detaches a helper the way `setsid env -i helper &` with a double fork does:
// the helper has its own session and an empty environment (no PROCFIX_SERVER_ID), and its parent
// exits, so it is re-parented to the supervisor while this server keeps running.
//
// Usage: supervisor_detacher <token>        the server: detaches the helper, then is ready
//        supervisor_detacher --helper <token>   the helper: sleeps for a minute
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <procfix/helpers/ready.hpp>

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "--helper") == 0) {
    ::close(3);  // tells the server that the helper runs (exec'ed, environment cleared)
    ::pause();   // the misbehaviour: still running when the server is stopped
    return 0;
  }
  procfix::take_ready_channels();
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  int started[2];
  if (::pipe(started) != 0) return 1;
  const pid_t middle = ::fork();
  if (middle == 0) {
    ::setsid();
    if (::fork() == 0) {
      if (started[1] != 3) {
        ::dup2(started[1], 3);
        ::close(started[1]);
      }
      ::close(started[0]);
      char* const helper_argv[] = {argv[0], const_cast<char*>("--helper"), argv[1], nullptr};
      char* const empty_environment[] = {nullptr};
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execve(argv[0], helper_argv, empty_environment);
      _exit(127);
    }
    _exit(0);  // the middle's copy of the pipe closes here
  }
  ::close(started[1]);
  ::waitpid(middle, nullptr, 0);  // the helper is the supervisor's from here on
  char byte;
  while (::read(started[0], &byte, 1) > 0) {
  }
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  int signal = 0;
  ::sigwait(&stop_signals, &signal);
  return 0;
}
