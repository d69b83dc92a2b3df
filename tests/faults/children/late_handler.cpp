// Adversarial child: announces readiness (PROCFIX_READY_FD or NOTIFY_SOCKET) and only then, after
// --handler-delay-ms (default 5), takes charge of SIGTERM; exits 0 on SIGTERM. Like haproxy -Ws.
// With --main-thread-exits, the main thread ends at once (pthread_exit(): the process lives on,
// its main thread a zombie in /proc/<pid>/stat) and a second thread, once it has seen that,
// announces readiness and takes charge late.
//   late_handler [--handler-delay-ms=N] [--main-thread-exits] [--token=T]
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "detail/proc.hpp"
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

// True once the main thread is a zombie or on its way out (PF_EXITING): what the stop reads.
bool main_thread_has_exited() {
  const std::optional<procfix::detail::SignalDispositions> main =
      procfix::detail::read_signal_dispositions(::getpid());
  if (!main) std::exit(2);
  return main->main_thread_exiting();
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
