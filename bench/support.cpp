#include "support.hpp"

#include "detail/proc.hpp"
#include "detail/socket_address.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

extern char** environ;

namespace procfix::bench {
namespace {

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error{errno, std::generic_category(), what};
}

// /dev/null, opened once (O_CLOEXEC) and dup2()ed to 0, 1, 2 of every raw child.
int dev_null() {
  static const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  return fd;
}

std::string read_small_file(const std::string& path) {
  std::ifstream in{path};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::int64_t self_cpu_ns() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto ns = [](const timeval& tv) {
    return std::int64_t{tv.tv_sec} * 1'000'000'000 + std::int64_t{tv.tv_usec} * 1000;
  };
  return ns(usage.ru_utime) + ns(usage.ru_stime);
}

Command::Command(std::string executable, std::vector<std::string> args, bool with_ready_fd) {
  strings_.push_back(std::move(executable));
  for (std::string& arg : args) strings_.push_back(std::move(arg));
  const std::size_t argc = strings_.size();
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view item{*entry};
    if (item.starts_with("PROCFIX_READY_FD=") || item.starts_with("NOTIFY_SOCKET=")) continue;
    strings_.emplace_back(item);
  }
  if (with_ready_fd) strings_.emplace_back("PROCFIX_READY_FD=3");
  for (std::size_t i = 0; i < argc; ++i) argv_.push_back(strings_[i].data());
  argv_.push_back(nullptr);
  for (std::size_t i = argc; i < strings_.size(); ++i) envp_.push_back(strings_[i].data());
  envp_.push_back(nullptr);
}

pid_t spawn_raw(SpawnMethod method, const Command& command, int ready_write, int stdout_fd) {
  const int null = dev_null();
  const int out = stdout_fd >= 0 ? stdout_fd : null;
  if (method == SpawnMethod::posix_spawn) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, null, 0);
    posix_spawn_file_actions_adddup2(&actions, out, 1);
    posix_spawn_file_actions_adddup2(&actions, null, 2);
    if (ready_write >= 0) posix_spawn_file_actions_adddup2(&actions, ready_write, 3);
    pid_t pid = -1;
    const int error =
        ::posix_spawn(&pid, command.path(), &actions, nullptr, command.argv(), command.envp());
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw std::system_error{error, std::generic_category(), "posix_spawn"};
    return pid;
  }
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    ::dup2(null, 0);
    ::dup2(out, 1);
    ::dup2(null, 2);
    if (ready_write >= 0) ::dup2(ready_write, 3);
    ::execve(command.path(), command.argv(), command.envp());
    ::_exit(127);
  }
  return pid;
}

RawPipe make_raw_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  if (fds[1] == 3) {
    const int moved = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 4);
    ::close(fds[1]);
    fds[1] = moved;
  }
  return {fds[0], fds[1]};
}

std::string read_line_blocking(int fd, std::int64_t* returned_ns) {
  std::string line;
  char buffer[512];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      const std::int64_t now = monotonic_ns();
      line.append(buffer, static_cast<std::size_t>(n));
      if (const std::size_t newline = line.find('\n'); newline != std::string::npos) {
        if (returned_ns != nullptr) *returned_ns = now;
        line.resize(newline);
        return line;
      }
    } else if (n == 0) {
      throw std::runtime_error{"readiness pipe closed without a line (got '" + line + "')"};
    } else if (errno != EINTR) {
      throw_errno("read");
    }
  }
}

void terminate_and_reap(pid_t pid) {
  ::kill(pid, SIGTERM);
  reap_expecting_success(pid);
}

void reap_expecting_success(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error{"child " + std::to_string(pid) + " did not exit with status 0 (wait " +
                             "status " + std::to_string(status) + ")"};
  }
}

void kill_and_reap(pid_t pid) noexcept {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

std::int64_t ready_ns_of(const std::string& line) {
  static constexpr std::string_view key = "\"ready_ns\":";
  const std::size_t at = line.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoll(line.c_str() + at + key.size(), nullptr, 10);
}

namespace {

// 127.0.0.1:`port`.
procfix::detail::SocketAddress loopback(std::uint16_t port) {
  std::string why;
  return *procfix::detail::parse_socket_address("127.0.0.1:" + std::to_string(port), why,
                                                /*allow_port_zero=*/true);
}

}  // namespace

std::uint16_t pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  procfix::detail::SocketAddress address = loopback(0);
  if (::bind(fd, address.get(), address.length) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error{error, std::generic_category(), "bind 127.0.0.1:0"};
  }
  ::close(fd);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
}

int try_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  const procfix::detail::SocketAddress address = loopback(port);
  if (::connect(fd, address.get(), address.length) == 0) return fd;
  ::close(fd);
  return -1;
}

int connect_by_polling(std::uint16_t port, std::chrono::milliseconds interval,
                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const int fd = try_connect(port); fd >= 0) return fd;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error{"nothing listened on 127.0.0.1:" + std::to_string(port) +
                               " within " + std::to_string(timeout.count()) + " ms"};
    }
    std::this_thread::sleep_for(interval);  // the measured polling strategy itself
  }
}

void expect_pong(int fd) {
  static constexpr char request[] = "ping\n";
  // MSG_NOSIGNAL: a server that went away is an error here, not a SIGPIPE for the bench.
  if (::send(fd, request, sizeof request - 1, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof request - 1)) {
    throw_errno("write ping");
  }
  const std::string reply = read_line_blocking(fd);
  if (reply != "pong" && reply != "pong\r") {
    throw std::runtime_error{"expected 'pong', got '" + reply + "'"};
  }
}

void ping(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  const std::string text = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::string why;
  const std::optional<procfix::detail::SocketAddress> address =
      procfix::detail::parse_socket_address(text, why);
  if (!address) throw std::runtime_error{"ping " + text + ": " + why};
  const int fd = ::socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  if (::connect(fd, address->get(), address->length) != 0) {
    ::close(fd);
    throw_errno("connect");
  }
  try {
    expect_pong(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

int open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory stream's own fd
}

std::vector<pid_t> children_of(pid_t pid) {
  return procfix::detail::children_of(pid);
}

std::vector<pid_t> children_of_self() {
  return children_of(::getpid());
}

std::string comm_of(pid_t pid) {
  std::string comm = read_small_file("/proc/" + std::to_string(pid) + "/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

char state_of(pid_t pid) {
  const std::string stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '\0' : stat[paren + 2];
}

int last_cpu_of(pid_t pid) {
  const std::string stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields{stat.substr(paren + 2)};
  std::string value;
  for (int field = 3; field <= 39 && fields >> value; ++field) {
  }
  return fields ? std::atoi(value.c_str()) : -1;
}

bool is_supervisor(pid_t pid) {
  // comm is truncated to 15 characters: "procfix-supervisor" shows as "procfix-supervi".
  return comm_of(pid).starts_with("procfix-supervi");
}

pid_t find_supervisor() {
  for (const pid_t child : children_of_self()) {
    if (is_supervisor(child)) return child;
  }
  return -1;
}

std::int64_t process_cpu_ns(pid_t pid) {
  clockid_t clock{};
  if (pid <= 0 || ::clock_getcpuclockid(pid, &clock) != 0) return -1;
  timespec ts{};
  if (::clock_gettime(clock, &ts) != 0) return -1;
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t proc_stat_cpu_ns(pid_t pid) {
  const std::string stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields{stat.substr(paren + 2)};
  // After "pid (comm) ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime(14) stime(15).
  std::string skip;
  for (int field = 3; field <= 13; ++field) fields >> skip;
  long long utime = 0;
  long long stime = 0;
  fields >> utime >> stime;
  return (utime + stime) * (1'000'000'000 / ::sysconf(_SC_CLK_TCK));
}

std::pair<std::uint64_t, std::uint64_t> raise_fd_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  const std::uint64_t old_soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return {old_soft, limit.rlim_cur};
}

CpuAccount cpu_account() {
  CpuAccount account;
  account.wall = monotonic_ns();
  const std::int64_t tick = 1'000'000'000 / ::sysconf(_SC_CLK_TCK);
  std::istringstream stat{read_small_file("/proc/stat")};
  std::string cpu;
  long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  account.machine_busy = (user + nice + system + irq + softirq) * tick;
  account.machine_steal = steal * tick;
  rusage children{};
  ::getrusage(RUSAGE_CHILDREN, &children);
  auto ns = [](const timeval& tv) {
    return std::int64_t{tv.tv_sec} * 1'000'000'000 + std::int64_t{tv.tv_usec} * 1000;
  };
  account.ours = self_cpu_ns() + ns(children.ru_utime) + ns(children.ru_stime);
  if (const pid_t supervisor = find_supervisor(); supervisor > 0) {
    account.ours += std::max<std::int64_t>(process_cpu_ns(supervisor), 0);
    const std::string text = read_small_file("/proc/" + std::to_string(supervisor) + "/stat");
    std::istringstream fields{text.substr(text.rfind(')') + 2)};
    std::string skip;
    for (int field = 3; field <= 15; ++field) fields >> skip;
    long long cutime = 0, cstime = 0;  // fields 16, 17: its reaped children (the servers)
    fields >> cutime >> cstime;
    account.ours += (cutime + cstime) * tick;
  }
  return account;
}

std::string load_average() {
  std::istringstream fields{read_small_file("/proc/loadavg")};
  std::string one, five, fifteen;
  fields >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::string machine_line() {
  utsname names{};
  ::uname(&names);
  std::string model = "unknown CPU";
  std::istringstream cpuinfo{read_small_file("/proc/cpuinfo")};
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("model name")) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return "nproc " + std::to_string(std::thread::hardware_concurrency()) + ", kernel " +
         names.release + ", CPU " + model + ", glibc " + ::gnu_get_libc_version();
}

}  // namespace procfix::bench
