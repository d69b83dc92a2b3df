// Adversarial child: creates the lock file named by --lock=PATH, never becomes ready, and
// removes the lock file when SIGTERM arrives (as Xvfb removes /tmp/.X11-unix/X0), then exits 0.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

int main(int argc, char** argv) {
  std::string lock;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--lock=", 7) == 0) lock = argv[i] + 7;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  const int fd = ::open(lock.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return 2;
  ::close(fd);
  int signal = 0;
  sigwait(&stop, &signal);
  ::unlink(lock.c_str());
  return 0;
}
