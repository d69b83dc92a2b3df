// Benchmark support: the hand-written floor (spawn without procfix), polling baselines, and
// process statistics (fds, children, CPU). Nothing here uses procfix.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace procfix::bench {

// CLOCK_MONOTONIC in nanoseconds (the clock sample_child's "ready_ns" uses).
inline std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// This process's CPU time so far (getrusage(RUSAGE_SELF) user + system, all threads), in ns.
std::int64_t self_cpu_ns();

// How the raw floor spawns.
enum class SpawnMethod {
  posix_spawn,  // glibc 2.36: clone(CLONE_VM | CLONE_VFORK), the vfork-type floor
  fork_exec,    // fork() then execve(): copies the parent's page tables
};

// A prepared command line and environment for execve(), built once outside the timed loop.
class Command {
 public:
  // `with_ready_fd`: add PROCFIX_READY_FD=3 to the environment (this process's environment minus
  // any PROCFIX_READY_FD and NOTIFY_SOCKET).
  Command(std::string executable, std::vector<std::string> args, bool with_ready_fd);
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;

  const char* path() const { return strings_.front().c_str(); }
  char* const* argv() const { return argv_.data(); }
  char* const* envp() const { return envp_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> argv_;
  std::vector<char*> envp_;
};

// A child spawned by hand. stdin and stderr are /dev/null, stdout too unless `stdout_fd` >= 0;
// `ready_write` (if >= 0) is installed at fd 3. Throws std::system_error.
pid_t spawn_raw(SpawnMethod method, const Command& command, int ready_write, int stdout_fd = -1);

// pipe2(O_CLOEXEC); the write end is never fd 3 (so dup2 into 3 always clears FD_CLOEXEC).
struct RawPipe {
  int read = -1;
  int write = -1;
};
RawPipe make_raw_pipe();

// Blocking reads from `fd` until a '\n' arrives. Returns the line (without '\n');
// `*returned_ns` is CLOCK_MONOTONIC taken as soon as the read that completed the line returned.
// Throws std::runtime_error on EOF or error.
std::string read_line_blocking(int fd, std::int64_t* returned_ns = nullptr);

// waitpid(). Throws std::runtime_error unless the child exited with status 0.
void reap_expecting_success(pid_t pid);

// kill(SIGTERM) + waitpid(). Throws std::runtime_error unless the child exited with status 0.
void terminate_and_reap(pid_t pid);

// SIGKILL + waitpid(), ignoring the outcome (cleanup after a failure).
void kill_and_reap(pid_t pid) noexcept;

// "ready_ns" from a readiness line (0 if absent).
std::int64_t ready_ns_of(const std::string& line);

// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read it, close. This is what
// users of polling do (and it races with other processes; procfix's protocol has no such race).
std::uint16_t pick_free_port();

// One connect() attempt to 127.0.0.1:port. Returns the connected socket or -1.
int try_connect(std::uint16_t port);

// The polling strategy being measured: try to connect; if refused, sleep `interval` and try again,
// until `timeout` has passed (then throws). Returns the connected socket.
int connect_by_polling(std::uint16_t port, std::chrono::milliseconds interval,
                       std::chrono::milliseconds timeout);

// Sends "ping\n" on `fd` and expects "pong" back. Throws std::runtime_error otherwise.
void expect_pong(int fd);

// Connects to host:port ("127.0.0.1" or "::1") and runs expect_pong on a fresh connection.
void ping(const std::string& host, std::uint16_t port);

// Entries in /proc/self/fd (not counting the directory's own fd).
int open_fd_count();

// Direct children of this process (all threads), from /proc/self/task/*/children.
std::vector<pid_t> children_of_self();
std::vector<pid_t> children_of(pid_t pid);

// The process's /proc/<pid>/comm ("" if gone) and state letter ('Z' for a zombie, 0 if gone).
std::string comm_of(pid_t pid);
char state_of(pid_t pid);

// Whether `pid` is a procfix-supervisor (its comm, truncated to 15 characters, is
// "procfix-supervi").
bool is_supervisor(pid_t pid);

// The CPU `pid` last ran on (/proc/<pid>/stat field 39), or -1.
int last_cpu_of(pid_t pid);

// This process's procfix-supervisor, or -1 if there is none.
pid_t find_supervisor();

// CPU time of another process (all threads) in ns, via clock_getcpuclockid (precise, unlike the
// clock-tick resolution of /proc/<pid>/stat). -1 if unavailable.
std::int64_t process_cpu_ns(pid_t pid);

// utime + stime of /proc/<pid>/stat, converted to ns (resolution: one clock tick, 10 ms).
std::int64_t proc_stat_cpu_ns(pid_t pid);

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns {old soft, new soft}.
std::pair<std::uint64_t, std::uint64_t> raise_fd_limit();

// CPU time spent on the whole machine (/proc/stat) and by this benchmark (itself, its reaped
// children, its procfix-supervisor and the supervisor's reaped children), for telling how much
// other work ran during a run. All in ns.
struct CpuAccount {
  std::int64_t wall = 0;
  std::int64_t machine_busy = 0;  // user + nice + system + irq + softirq, all CPUs
  std::int64_t machine_steal = 0;
  std::int64_t ours = 0;
};
CpuAccount cpu_account();

// The 1, 5 and 15 minute load averages from /proc/loadavg, e.g. "0.12 0.30 0.25".
std::string load_average();

// One line describing the machine: nproc, kernel, CPU model, glibc.
std::string machine_line();

}  // namespace procfix::bench
