// Adversarial child for Readiness::listen() (tests/faults/listen_test.cpp): a server with no
// readiness protocol. Listens on each address given ("127.0.0.1:PORT" or a unix socket path),
// in order, then serves line requests on all of them: "ping" -> "pong"; "listen" -> listens on
// one more socket (127.0.0.1:0) and answers "listened PORT" or "failed ERRNO".
//   --never      never listens (sleeps; its misbehaviour)
//   --fork       a forked child listens and serves; the parent waits for it
//   --thread     its listen() calls run on a second thread (as in a server whose network thread
//                is not the main one); the main thread serves
//   --exit=N     exits with status N right after its listen() calls
//   --getppid=N:FILE  first times N getppid() calls and writes the ns per call to FILE (to
//                measure the cost of the listen() filter on other system calls)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/syscall.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "detail/socket_address.hpp"

namespace {

int open_listener(const std::string& address) {
  std::string why;
  const auto to = procfix::detail::parse_socket_address(address, why, /*allow_port_zero=*/true);
  if (!to) return -EINVAL;
  if (to->family() == AF_UNIX) ::unlink(address.c_str());
  const int fd = ::socket(to->family(), SOCK_STREAM, 0);
  if (::bind(fd, to->get(), to->length) != 0) return -errno;
  return ::listen(fd, 16) == 0 ? fd : -errno;
}

int port_of(int fd) {
  sockaddr_in in{};
  socklen_t length = sizeof in;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&in), &length);
  return ntohs(in.sin_port);
}

void answer(int connection, std::vector<pollfd>& fds) {
  char line[256];
  const ssize_t n = ::read(connection, line, sizeof line - 1);
  if (n > 0) {
    line[n] = '\0';
    std::string reply = "pong\n";
    if (std::strncmp(line, "listen", 6) == 0) {
      const int fd = open_listener("127.0.0.1:0");
      if (fd < 0) {
        reply = "failed " + std::to_string(-fd) + "\n";
      } else {
        fds.push_back({fd, POLLIN, 0});
        reply = "listened " + std::to_string(port_of(fd)) + "\n";
      }
    }
    (void)!::write(connection, reply.data(), reply.size());
  }
  ::close(connection);
}

[[noreturn]] void serve(std::vector<pollfd> fds) {
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) std::exit(4);
    const std::size_t count = fds.size();
    for (std::size_t i = 0; i < count; ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      const int connection = ::accept(fds[i].fd, nullptr, nullptr);
      if (connection >= 0) answer(connection, fds);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool never = false, in_fork = false, on_thread = false;
  int exit_status = -1;
  std::vector<std::string> addresses;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--never") {
      never = true;
    } else if (arg == "--fork") {
      in_fork = true;
    } else if (arg == "--thread") {
      on_thread = true;
    } else if (arg.starts_with("--getppid=")) {
      const long calls = std::atol(arg.c_str() + 10);
      const auto start = std::chrono::steady_clock::now();
      for (long n = 0; n < calls; ++n) ::syscall(SYS_getppid);
      const std::chrono::duration<double, std::nano> took =
          std::chrono::steady_clock::now() - start;
      std::ofstream{arg.substr(arg.find(':') + 1)} << took.count() / static_cast<double>(calls);
    } else if (arg.starts_with("--exit=")) {
      exit_status = std::atoi(arg.c_str() + 7);
    } else {
      addresses.push_back(arg);
    }
  }
  // A clean stop: exit 0 at SIGTERM (the forked mode's parent waits for it itself).
  ::signal(SIGTERM, [](int) { _exit(0); });
  if (never) {
    for (;;) ::pause();
  }
  if (in_fork) {
    // The parent stops its worker on SIGTERM, so that nothing is left behind.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &stop, nullptr);
    const pid_t worker = ::fork();
    if (worker > 0) {
      int signal = 0;
      ::sigwait(&stop, &signal);
      ::kill(worker, SIGKILL);
      ::waitpid(worker, nullptr, 0);
      return 0;
    }
    ::sigprocmask(SIG_UNBLOCK, &stop, nullptr);
  }
  std::vector<pollfd> fds;
  bool failed = false;
  auto listen_all = [&] {
    for (const std::string& address : addresses) {
      const int fd = open_listener(address);
      if (fd < 0) {
        std::fprintf(stderr, "listen_child: %s: %s\n", address.c_str(), std::strerror(-fd));
        failed = true;
        return;
      }
      fds.push_back({fd, POLLIN, 0});
    }
  };
  if (on_thread) {
    std::thread{listen_all}.join();
  } else {
    listen_all();
  }
  if (failed) return 2;
  if (exit_status >= 0) return exit_status;
  serve(std::move(fds));
}
