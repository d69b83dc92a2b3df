#include "misbehaviour.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "detail/linux.hpp"
#include "detail/unix_address.hpp"
#include "detail/write_all.hpp"
#include "procfix/helpers/ready.hpp"
#include "ready_internal.hpp"

namespace sample_child {

using procfix::detail::write_all;

using json = nlohmann::json;

void spam(int fd, long bytes) {
  std::string chunk;
  for (int i = 0; chunk.size() < 64 * 1024; ++i) {
    chunk += "sample_child spam " + std::to_string(i % 1000000) + " ................\n";
  }
  while (bytes > 0) {
    const auto n = std::min<long>(bytes, static_cast<long>(chunk.size()));
    write_all(fd, std::string_view{chunk}.substr(0, static_cast<std::size_t>(n)));
    bytes -= n;
  }
}

namespace {

std::int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// --fork-holding-ready-fd: a child that keeps the inherited ready fd open until we exit.
void fork_ready_fd_holder() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::perror("sample_child: pipe2");
    std::exit(1);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("sample_child: fork");
    std::exit(1);
  }
  if (pid == 0) {
    ::close(pipe_fds[1]);
    char byte;
    while (::read(pipe_fds[0], &byte, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);  // the write end closed: sample_child has exited
  }
  ::close(pipe_fds[0]);  // keep pipe_fds[1] (CLOEXEC) open until we exit
}

// --notify-from-outside: a daemonised grandchild, re-parented out of this server's process tree,
// sends "READY=1" to NOTIFY_SOCKET (an impostor the fixture must ignore); returns after it sent.
void notify_from_outside(const std::string& notify_socket) {
  if (notify_socket.empty()) usage_error("--notify-from-outside needs NOTIFY_SOCKET");
  int sent[2];
  if (::pipe2(sent, O_CLOEXEC) != 0) return;
  const pid_t middle = ::fork();
  if (middle == 0) {
    const pid_t self = ::getpid();
    if (::fork() == 0) {
      // Wait until the middle process has exited, so we are no longer in the server's tree
      // (pidfd_open fails if it is already gone).
      const int parent = procfix::detail::pidfd_open(self);
      if (parent >= 0) {
        pollfd gone{parent, POLLIN, 0};
        ::poll(&gone, 1, -1);
      }
      const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (const auto address = procfix::detail::unix_address(notify_socket)) {
        ::sendto(fd, "READY=1", 7, 0, address->get(), address->length);
      }
      write_all(sent[1], "x");
      ::_exit(0);
    }
    ::_exit(0);
  }
  ::close(sent[1]);
  ::waitpid(middle, nullptr, 0);
  char byte;
  (void)!::read(sent[0], &byte, 1);  // returns once the impostor has sent (or died)
  ::close(sent[0]);
}

// --leave-zombie: a child that has exited and is never reaped. WNOWAIT waits for its exit
// without reaping it, so it is a zombie from here on.
void leave_zombie() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  if (pid < 0) {
    std::perror("sample_child: fork");
    return;
  }
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
}

}  // namespace

// --leak-grandchild: a process that outlives us. Single-threaded caller (before the io thread).
void leak_grandchild(const std::string& mode) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("sample_child: fork");
    return;
  }
  auto become_leaked = [] {
    for (const int sig : {SIGINT, SIGTERM, SIGQUIT}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::close_range(3, ~0U, 0);
    ::setsid();
    char text[64];
    const int n = std::snprintf(text, sizeof text, "sample_child: leaked pid %d\n",
                                static_cast<int>(::getpid()));
    if (n > 0) write_all(2, std::string_view{text, static_cast<std::size_t>(n)});
    for (;;) ::pause();
  };
  if (pid == 0) {
    if (mode == "setsid") become_leaked();
    ::setsid();
    const pid_t grandchild = ::fork();
    if (grandchild == 0) become_leaked();
    ::_exit(grandchild < 0 ? 1 : 0);
  }
  if (mode == "daemon") {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void misbehave_before_ready(const Config& config, const std::string& notify_socket) {
  if (config.start_delay_ms)
    std::this_thread::sleep_for(std::chrono::milliseconds{*config.start_delay_ms});
  for (long k = 1; k <= config.stderr_lines; ++k) {
    write_all(2, "sample_child stderr line " + std::to_string(k) + "\n");
  }
  if (config.stderr_bytes > 0) spam(2, config.stderr_bytes);
  if (config.stdout_bytes > 0) spam(1, config.stdout_bytes);
  if (config.exit_before_ready) std::exit(*config.exit_before_ready);
  if (config.signal_before_ready) {
    const int sig = *config.signal_before_ready;
    ::signal(sig, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::raise(sig);
    std::cerr << "sample_child: survived signal " << sig << " raised before readiness\n";
    std::exit(3);
  }
  if (config.fork_holding_ready_fd) fork_ready_fd_holder();
  if (config.notify_from_outside) notify_from_outside(notify_socket);
  if (!config.notify_status.empty()) procfix::notify_status(config.notify_status);
  if (config.leave_zombie) leave_zombie();
}

void announce_ready(const Config& config, const std::string& address, json fields) {
  if (config.never_ready) return;
  try {
    if (config.close_without_message) {
      procfix::detail::close_ready_fd_without_message();
      return;
    }
    if (config.malformed_json) {
      (void)procfix::detail::write_raw_ready_bytes("{\"address\": oops\n");
      return;
    }
    if (config.oversized_message) {
      json message = fields;
      message["address"] = address;
      message["ready_ns"] = monotonic_ns();
      const auto wanted = static_cast<std::size_t>(*config.oversized_message);
      const std::size_t base = message.dump().size() + std::string_view{",\"pad\":\"\""}.size();
      message["pad"] = std::string(wanted > base ? wanted - base : 0, 'x');
      (void)procfix::detail::write_raw_ready_bytes(message.dump() + "\n");
      return;
    }
    fields["ready_ns"] = monotonic_ns();
    (void)procfix::notify_ready(
        {.address = config.no_address ? std::string{} : address, .extra = std::move(fields)});
  } catch (const std::exception& e) {
    std::cerr << "sample_child: " << e.what() << '\n';
  }
}

}  // namespace sample_child
