// Adversarial child: announces readiness (PROCFIX_READY_FD or NOTIFY_SOCKET) and only then, after
// --handler-delay-ms (default 5), takes charge of SIGTERM; exits 0 on SIGTERM. Like haproxy -Ws.
// With --main-thread-exits, a second thread does that while the main thread ends at once
// (pthread_exit(): the process lives on, its main thread a zombie in /proc/<pid>/stat).
//   late_handler [--handler-delay-ms=N] [--main-thread-exits] [--token=T]
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
void* take_charge_late(void*) {
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

}  // namespace

int main(int argc, char** argv) {
  bool main_thread_exits = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--handler-delay-ms=", 19) == 0) delay_ms = std::atoi(argv[i] + 19);
    if (std::strcmp(argv[i], "--main-thread-exits") == 0) main_thread_exits = true;
  }
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  if (!main_thread_exits) take_charge_late(nullptr);
  pthread_t thread;
  if (pthread_create(&thread, nullptr, take_charge_late, nullptr) != 0) return 2;
  pthread_exit(nullptr);
}
