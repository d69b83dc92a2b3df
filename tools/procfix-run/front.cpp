#include "front.hpp"

#include "procfix/fixtures/exit_status.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "detail/linux.hpp"
#include "detail/write_all.hpp"

namespace procfix::run {
namespace {

using detail::pidfd_open;

// How long, once the worker has ended, the front waits for what is left (procfix-supervisor
// finishing its clean-up) before it SIGKILLs it. An upper bound, not a delay.
constexpr int kLeftoverGraceMs = 5000;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "procfix-run: %s: %s\n", what, std::strerror(errno));
  std::exit(kExitStartFailed);
}

// This process's children (it is single-threaded: its one task's list is all of them).
std::vector<pid_t> own_children() {
  std::vector<pid_t> children;
  const std::string path = "/proc/self/task/" + std::to_string(::getpid()) + "/children";
  if (FILE* file = std::fopen(path.c_str(), "re")) {
    for (int pid; std::fscanf(file, "%d", &pid) == 1;) children.push_back(pid);
    std::fclose(file);
  }
  return children;
}

// Waits (bounded) for every remaining child to end by itself, SIGKILLs what is left, reaps all;
// again for whatever that re-parents to us, until no child is left. Our children are unreaped
// until we reap them here, so their pids cannot be reused under us.
void reap_leftovers() {
  for (int grace_ms = kLeftoverGraceMs;; grace_ms = 0) {
    const std::vector<pid_t> children = own_children();
    if (children.empty()) return;
    std::vector<pollfd> handles;
    for (pid_t child : children) handles.push_back({pidfd_open(child), POLLIN, 0});
    for (pollfd& handle : handles) {
      if (handle.fd >= 0 && ::poll(&handle, 1, grace_ms) == 0) {
        detail::pidfd_send_signal(handle.fd, SIGKILL);
      }
    }
    for (std::size_t i = 0; i < children.size(); ++i) {
      while (::waitpid(children[i], nullptr, 0) < 0 && errno == EINTR) {
      }
      if (handles[i].fd >= 0) ::close(handles[i].fd);
    }
  }
}

// Copies complete lines from the worker to stdout. Returns false at EOF.
bool relay_lines(int from, std::string& pending, bool& ready_printed) {
  char buffer[65536];
  const ssize_t n = ::read(from, buffer, sizeof buffer);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  pending.append(buffer, static_cast<std::size_t>(n));
  const std::size_t end = pending.rfind('\n');
  if (end == std::string::npos) return true;
  // A failed write: the caller stopped reading stdout, nothing more to do for it.
  detail::write_all(STDOUT_FILENO, std::string_view{pending}.substr(0, end + 1));
  pending.erase(0, end + 1);
  ready_printed = true;
  return true;
}

// Forks the worker running `worker` with the write end of `lines`; returns its pid.
pid_t fork_worker(const std::function<int(int lines_fd)>& worker, const int (&lines)[2]) {
  const pid_t front = ::getpid();
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    ::close(lines[0]);
    // If the front dies (even by SIGKILL), so does the worker, and with it the lifeline.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != front) _exit(kExitStartFailed);
    std::exit(worker(lines[1]));
  }
  return pid;
}

// A signalfd for SIGTERM and SIGINT.
int stop_signal_fd() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  const int signals = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signals < 0) fail("signalfd");
  return signals;
}

// Copies the worker's lines to stdout until it has ended and everything it wrote is copied. A
// stop signal is passed on once the ready line is printed; before that it kills the worker and
// is returned (0: none). `ready_printed` says whether the ready line was printed.
int relay_until_worker_ends(int lines_fd, int signals, int worker_fd, bool& ready_printed) {
  std::string pending;
  bool lines_open = true;
  int interrupted_by = 0;
  for (;;) {
    pollfd fds[3] = {
        {lines_open ? lines_fd : -1, POLLIN, 0}, {signals, POLLIN, 0}, {worker_fd, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    // Lines first: a ready line that arrived together with a signal is printed, and the signal
    // then stops a running server.
    if (fds[0].revents != 0) lines_open = relay_lines(lines_fd, pending, ready_printed);
    if (fds[0].revents != 0 && lines_open) continue;  // drain before looking at the rest
    if (fds[1].revents != 0) {
      signalfd_siginfo info;
      if (::read(signals, &info, sizeof info) == sizeof info) {
        const int sig = static_cast<int>(info.ssi_signo);
        if (ready_printed) {
          detail::pidfd_send_signal(worker_fd, sig);
        } else {
          interrupted_by = sig;
          detail::pidfd_send_signal(worker_fd, SIGKILL);
          lines_open = false;  // nothing it writes from now on is printed
        }
      }
    }
    if (fds[2].revents != 0 && !lines_open) return interrupted_by;
  }
}

}  // namespace

int run_in_worker(const std::function<int(int lines_fd)>& worker) {
  // Whatever the worker leaves (procfix-supervisor, once the worker is gone) comes to us.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int lines[2];
  if (::pipe2(lines, O_CLOEXEC) != 0) fail("pipe2");
  const pid_t pid = fork_worker(worker, lines);
  ::close(lines[1]);
  const int worker_fd = pidfd_open(pid);
  if (worker_fd < 0) fail("pidfd_open");
  const int signals = stop_signal_fd();
  bool ready_printed = false;
  const int interrupted_by = relay_until_worker_ends(lines[0], signals, worker_fd, ready_printed);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  reap_leftovers();
  if (interrupted_by != 0) {
    std::cerr << "procfix-run: interrupted by " << procfix::signal_name(interrupted_by)
              << " while waiting for readiness: the server and everything it started were killed "
                 "(SIGKILL) and reaped\n";
    return kExitStartFailed;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  std::fprintf(stderr, "procfix-run: internal error: its worker process was killed by signal %d\n",
               WTERMSIG(status));
  return ready_printed ? 1 : kExitStartFailed;
}

}  // namespace procfix::run
