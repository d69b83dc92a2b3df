// Test support for tests/helpers: spawn sample_child by hand (posix_spawn), read its readiness
// pipe, talk to it over TCP, receive NOTIFY_SOCKET datagrams. Deliberately independent of
// procfix::fixtures, so that the helpers are tested against the raw protocol.
//
// Every wait is event-driven (poll on a pipe, socket or pidfd) with a generous hang-catching
// bound (kHangCatch); reaching it is a test failure, never a synchronisation step.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "detail/unique_fd.hpp"
#include "detail/unix_address.hpp"
#include "support/line_client.hpp"

extern char** environ;

namespace procfix::testing {

inline constexpr std::chrono::milliseconds kHangCatch{60'000};

using Fd = procfix::detail::UniqueFd;

[[noreturn]] inline void fail_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// True if `fd` became readable (or hung up) within kHangCatch.
inline bool wait_readable(int fd, std::chrono::milliseconds limit = kHangCatch) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  for (;;) {
    const int n = ::poll(&p, 1, static_cast<int>(limit.count()));
    if (n >= 0) return n == 1;
    if (errno != EINTR) fail_errno("poll");
  }
}

// Reads from `fd` into `buffer` until it holds a '\n'; returns the line without it, or nullopt
// at EOF (the partial rest stays in `buffer`). Throws after kHangCatch.
inline std::optional<std::string> read_line(int fd, std::string& buffer) {
  for (;;) {
    const auto newline = buffer.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      return line;
    }
    if (!wait_readable(fd)) throw std::runtime_error("no line within the hang-catching bound");
    char chunk[65536];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET) return std::nullopt;
    if (n < 0) fail_errno("read");
    if (n == 0) return std::nullopt;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

// Reads everything until EOF.
inline std::string read_all(int fd) {
  std::string all;
  std::string buffer;
  while (auto line = read_line(fd, buffer)) all += *line + "\n";
  return all + buffer;
}

struct ChildOptions {
  std::vector<std::string> args{};
  std::vector<std::string> env{};  // "NAME=value" additions
  std::string executable{PROCFIX_SAMPLE_CHILD};
  bool ready_pipe = true;  // PROCFIX_READY_FD=<ready_fd>
  int ready_fd = 3;
  std::vector<std::pair<int, int>> extra_fds{};  // {fd in this process, fd in the child}
  bool capture_stdout = false;
  bool capture_stderr = false;
};

// A spawned process. The destructor SIGKILLs and reaps it if it still runs.
class Child {
 public:
  explicit Child(ChildOptions options) {
    int ready[2] = {-1, -1};
    if (options.ready_pipe && ::pipe2(ready, O_CLOEXEC) != 0) fail_errno("pipe2");
    ready_read_ = Fd{ready[0]};
    Fd ready_write{ready[1]};
    int out[2] = {-1, -1};
    if (options.capture_stdout && ::pipe2(out, O_CLOEXEC) != 0) fail_errno("pipe2");
    stdout_ = Fd{out[0]};
    Fd out_write{out[1]};
    int err[2] = {-1, -1};
    if (options.capture_stderr && ::pipe2(err, O_CLOEXEC) != 0) fail_errno("pipe2");
    stderr_ = Fd{err[0]};
    Fd err_write{err[1]};

    // Sources are first moved above every target number, so dup2 never clobbers a source and
    // always clears FD_CLOEXEC (dup2 onto itself would not).
    std::vector<Fd> high;
    auto lift = [&](int fd) {
      const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 100);
      if (moved < 0) fail_errno("fcntl(F_DUPFD_CLOEXEC)");
      high.emplace_back(moved);
      return moved;
    };
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int highest_target = 2;
    if (options.ready_pipe) {
      posix_spawn_file_actions_adddup2(&actions, lift(ready_write.get()), options.ready_fd);
      highest_target = std::max(highest_target, options.ready_fd);
    }
    if (out_write) posix_spawn_file_actions_adddup2(&actions, lift(out_write.get()), 1);
    if (err_write) posix_spawn_file_actions_adddup2(&actions, lift(err_write.get()), 2);
    for (const auto& [from, to] : options.extra_fds) {
      posix_spawn_file_actions_adddup2(&actions, lift(from), to);
      highest_target = std::max(highest_target, to);
    }
    // Nothing else of this test process reaches the child (close of a closed fd is ignored).
    for (int fd = 3; fd < highest_target; ++fd) {
      const bool target = (options.ready_pipe && fd == options.ready_fd) ||
                          std::any_of(options.extra_fds.begin(), options.extra_fds.end(),
                                      [fd](const auto& pair) { return pair.second == fd; });
      if (!target) posix_spawn_file_actions_addclose(&actions, fd);
    }
    posix_spawn_file_actions_addclosefrom_np(&actions, highest_target + 1);

    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry{*e};
      if (entry.starts_with("PROCFIX_READY_FD=") || entry.starts_with("NOTIFY_SOCKET=")) continue;
      env.emplace_back(entry);
    }
    if (options.ready_pipe) env.push_back("PROCFIX_READY_FD=" + std::to_string(options.ready_fd));
    for (const auto& e : options.env) env.push_back(e);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> args{options.executable};
    args.insert(args.end(), options.args.begin(), options.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    sigset_t all;  // default dispositions: nothing ignored is inherited
    sigfillset(&all);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const int error = ::posix_spawn(&pid_, options.executable.c_str(), &actions, &attributes,
                                    argv.data(), envp.data());
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      errno = error;
      fail_errno("posix_spawn " + options.executable);
    }
    pidfd_ = Fd{static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0))};
    if (!pidfd_) fail_errno("pidfd_open");
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  ~Child() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }

  pid_t pid() const { return pid_; }
  int ready_fd() const { return ready_read_.get(); }

  // The ready line, or nullopt at EOF without a newline (partial bytes in ready_rest()).
  std::optional<std::string> read_ready_line() {
    return read_line(ready_read_.get(), ready_buffer_);
  }
  const std::string& ready_rest() const { return ready_buffer_; }
  nlohmann::json ready_message() {
    const auto line = read_ready_line();
    if (!line) throw std::runtime_error("sample_child closed its ready fd without a line");
    return nlohmann::json::parse(*line);
  }

  std::optional<std::string> read_stdout_line() { return read_line(stdout_.get(), stdout_buffer_); }
  std::optional<std::string> read_stderr_line() { return read_line(stderr_.get(), stderr_buffer_); }
  std::string read_stderr_to_eof() { return stderr_buffer_ + read_all(stderr_.get()); }
  std::string read_stdout_to_eof() { return stdout_buffer_ + read_all(stdout_.get()); }

  void send_signal(int sig) {
    if (::kill(pid_, sig) != 0) fail_errno("kill");
  }

  // Waits for the exit and returns the raw wait status. Hang-catching: after kHangCatch the child
  // is SIGKILLed and the test fails.
  int wait() {
    if (status_) return *status_;
    if (!wait_readable(pidfd_.get())) {
      ADD_FAILURE() << "sample_child (pid " << pid_ << ") did not exit within "
                    << kHangCatch.count() << " ms; killing it";
      ::kill(pid_, SIGKILL);
    }
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) fail_errno("waitpid");
    }
    status_ = status;
    return status;
  }

 private:
  pid_t pid_ = -1;
  Fd pidfd_;
  Fd ready_read_;
  Fd stdout_;
  Fd stderr_;
  std::string ready_buffer_;
  std::string stdout_buffer_;
  std::string stderr_buffer_;
  std::optional<int> status_;
};

inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}
inline bool exited_with(int status, int code) {
  return WIFEXITED(status) && WEXITSTATUS(status) == code;
}
inline bool killed_by(int status, int sig) {
  return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

// Connects to "host:port" / "[v6]:port". Returns the socket, or an empty Fd with errno set.
inline Fd connect_to(const std::string& address) {
  return Fd{connect_socket(address)};
}

// A unix datagram socket standing in for systemd's NOTIFY_SOCKET: a filesystem path in a fresh
// temporary directory, or an abstract name ("@..."), unique per process.
class NotifyListener {
 public:
  explicit NotifyListener(bool abstract) {
    fd_ = Fd{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    if (!fd_) fail_errno("socket(AF_UNIX)");
    static int counter = 0;
    const std::string unique =
        "procfix-notify-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    if (abstract) {
      name_ = "@" + unique;
    } else {
      char directory[] = "/tmp/procfix-helpers-XXXXXX";
      if (::mkdtemp(directory) == nullptr) fail_errno("mkdtemp");
      directory_ = directory;
      name_ = directory_ + "/notify";
    }
    const auto address = procfix::detail::unix_address(name_);
    if (!address || ::bind(fd_.get(), address->get(), address->length) != 0) fail_errno("bind");
  }
  ~NotifyListener() {
    if (!directory_.empty()) {
      ::unlink(name_.c_str());
      ::rmdir(directory_.c_str());
    }
  }
  const std::string& name() const { return name_; }
  std::string env() const { return "NOTIFY_SOCKET=" + name_; }
  // One datagram; throws after the hang-catching bound.
  std::string receive() {
    if (!wait_readable(fd_.get())) throw std::runtime_error("no datagram on " + name_);
    char buffer[4096];
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n < 0) fail_errno("recv");
    return std::string(buffer, static_cast<std::size_t>(n));
  }

 private:
  Fd fd_;
  std::string name_;
  std::string directory_;
};

}  // namespace procfix::testing
