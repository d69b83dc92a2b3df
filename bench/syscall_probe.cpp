// procfix_syscall_probe N: a tiny server for bench section 10. Times N getppid() system calls
// (the cost of every system call inside a server, with or without the listen() readiness
// filter), prints "getppid_ns <ns per call>" on stdout, then listens on 127.0.0.1:0 (ready for
// Readiness::listen()), writes the procfix readiness line if PROCFIX_READY_FD is set, and exits 0
// on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace {

long long monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1'000'000'000LL + now.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop, nullptr);
  const long calls = argc > 1 ? std::atol(argv[1]) : 100'000;
  const long long t0 = monotonic_ns();
  for (long i = 0; i < calls; ++i) (void)::syscall(SYS_getppid);
  const long long t1 = monotonic_ns();
  std::printf("getppid_ns %.2f\n",
              calls > 0 ? static_cast<double>(t1 - t0) / static_cast<double>(calls) : 0.0);
  std::fflush(stdout);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 ||
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 16) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("procfix_syscall_probe: listen");
    return 1;
  }
  if (const char* fd = std::getenv("PROCFIX_READY_FD")) {
    ::dprintf(std::atoi(fd), "{\"address\":\"127.0.0.1:%d\"}\n", ntohs(address.sin_port));
    ::close(std::atoi(fd));
  }
  int signal = 0;
  ::sigwait(&stop, &signal);
  return 0;
}
