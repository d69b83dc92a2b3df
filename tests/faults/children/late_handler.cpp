// Adversarial child: announces readiness (PROCFIX_READY_FD or NOTIFY_SOCKET) and only then, after
// --handler-delay-ms (default 5), takes charge of SIGTERM; exits 0 on SIGTERM. Like haproxy -Ws.
// With --main-thread-exits, the main thread ends at once (pthread_exit(): the process lives on,
// its main thread a zombie in /proc/<pid>/stat) and a second thread, once it has seen that,
// announces readiness and takes charge late.
//   late_handler [--handler-delay-ms=N] [--main-thread-exits] [--token=T]
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "procfix/helpers/ready.hpp"

namespace {

int delay_ms = 5;

// The misbehaviour: work (not a sleep) between the announcement and the handler, a few
// milliseconds of system calls, as a server's remaining initialisation would be.
[[noreturn]] void take_charge_late() {
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{delay_ms};
  while (std::chrono::steady_clock::now() < until) (void)::getppid();
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  int signal = 0;
  sigwait(&stop, &signal);
  std::exit(0);
}

// True once the main thread is a zombie or on its way out (PF_EXITING), from its
// /proc/self/task/<pid>/stat: field 3 the state, field 9 the flags.
bool main_thread_has_exited() {
  const std::string path = "/proc/self/task/" + std::to_string(::getpid()) + "/stat";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) std::exit(2);
  char text[1024];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) std::exit(2);
  text[n] = '\0';
  const char* p = std::strrchr(text, ')');
  if (p == nullptr) std::exit(2);
  const char state = p[2];
  for (int field = 2; field < 9 && p != nullptr; ++field) p = std::strchr(p + 1, ' ');
  const unsigned long flags = p != nullptr ? std::strtoul(p + 1, nullptr, 10) : 0;
  return state == 'Z' || (flags & 0x4) != 0;  // PF_EXITING
}

// Not pthread_join(): ThreadSanitizer cannot join the main thread. The wait is a spin, not a
// sleep: the main thread reaches its exit within microseconds of pthread_exit().
void* after_the_main_thread(void*) {
  while (!main_thread_has_exited()) {
  }
  take_charge_late();
}

}  // namespace

int main(int argc, char** argv) {
  bool main_thread_exits = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--handler-delay-ms=", 19) == 0) delay_ms = std::atoi(argv[i] + 19);
    if (std::strcmp(argv[i], "--main-thread-exits") == 0) main_thread_exits = true;
  }
  if (!main_thread_exits) take_charge_late();
  pthread_t thread;
  if (pthread_create(&thread, nullptr, after_the_main_thread, nullptr) != 0) return 2;
  pthread_exit(nullptr);
}
