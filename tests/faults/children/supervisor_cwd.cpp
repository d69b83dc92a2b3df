// Adversarial child: reports the working directory and umask it was started with in its ready
// line: {"address":"127.0.0.1:1","cwd":"...","umask":N}, then serves until SIGTERM.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <procfix/helpers/ready.hpp>

int main() {
  procfix::take_ready_channels();
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  char cwd[PATH_MAX] = "";
  if (::getcwd(cwd, sizeof cwd) == nullptr) return 1;
  const mode_t mask = ::umask(0);  // single-threaded: read and put back
  ::umask(mask);
  (void)procfix::notify_ready(
      {.address = "127.0.0.1:1", .extra = {{"cwd", cwd}, {"umask", static_cast<int>(mask)}}});
  int signal = 0;
  ::sigwait(&stop_signals, &signal);
  return 0;
}
