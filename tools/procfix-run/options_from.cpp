#include "options_from.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "detail/linux.hpp"
#include "detail/options_json.hpp"
#include "detail/text.hpp"
#include "options.hpp"
#include "procfix/fixtures/errors.hpp"

extern char** environ;

namespace procfix::run {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// More than any options line; a binary that prints more is not answering.
constexpr std::size_t kMaxStdout = 1 << 20;
// The stderr kept for the error message (the newest bytes).
constexpr std::size_t kStderrTail = 4096;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_{fd} {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

struct Output {
  std::string out, err;
  bool out_overflow = false;
};

// Reads what `fd` has now (non-blocking). False at EOF or on an error.
bool drain(int fd, std::string& into, std::size_t limit, bool keep_tail, bool* overflow) {
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    into.append(buffer, static_cast<std::size_t>(n));
    if (into.size() > limit) {
      if (keep_tail) {
        into.erase(0, into.size() - limit);
      } else {
        into.resize(limit);
        if (overflow != nullptr) *overflow = true;
        return false;
      }
    }
  }
}

// The last line of `text` that is not empty (without its '\n').
std::string_view last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  const std::size_t newline = text.rfind('\n');
  return newline == std::string_view::npos ? text : text.substr(newline + 1);
}

// The environment of the describing run: ours, with the request `run_as` instead of any earlier
// one, and a GTEST_FILTER that runs no test should the binary not answer.
std::vector<std::string> describing_environment(const std::string& run_as) {
  std::vector<std::string> variables;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view variable = *entry;
    if (variable.starts_with(std::string{detail::kDescribeServerVariable} + "=") ||
        variable.starts_with("GTEST_FILTER=")) {
      continue;
    }
    variables.emplace_back(variable);
  }
  variables.push_back(run_as);
  variables.emplace_back("GTEST_FILTER=-*");
  return variables;
}

// Spawns `binary` in its own process group, stdin /dev/null, stdout and stderr to the pipes'
// write ends, default signal state. 0 or posix_spawn()'s error number.
int spawn_binary(const std::string& binary, char* const* envp, int out_write, int err_write,
                 pid_t& pid) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setpgroup(&attributes, 0);  // its own group: killed as a whole later
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::string argv0 = binary;
  char* argv[] = {argv0.data(), nullptr};
  const int spawned = ::posix_spawn(&pid, binary.c_str(), &actions, &attributes, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  return spawned;
}

// Reads the binary's stdout and stderr (non-blocking) until it exits, stdout overflows or
// `deadline` passes. False if the deadline passed.
bool collect_output(const Fd& out_read, const Fd& err_read, const Fd& ended,
                    Clock::time_point deadline, Output& output) {
  bool out_open = true, err_open = true, exited = false;
  while (!exited) {
    pollfd fds[3] = {{out_open ? out_read.get() : -1, POLLIN, 0},
                     {err_open ? err_read.get() : -1, POLLIN, 0},
                     {ended.get(), POLLIN, 0}};
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    const int n = ::poll(fds, 3, static_cast<int>(std::min<long long>(left, 1'000'000'000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return true;
    if (fds[0].revents != 0) {
      out_open = drain(out_read.get(), output.out, kMaxStdout, false, &output.out_overflow);
      if (output.out_overflow) return true;
    }
    if (fds[1].revents != 0)
      err_open = drain(err_read.get(), output.err, kStderrTail, true, nullptr);
    // Without a pidfd (cannot happen on Linux >= 5.3), the end of both pipes stands for the exit.
    exited = fds[2].revents != 0 || (ended.get() < 0 && !out_open && !err_open);
  }
  // What it wrote just before it ended.
  if (out_open) drain(out_read.get(), output.out, kMaxStdout, false, &output.out_overflow);
  if (err_open) drain(err_read.get(), output.err, kStderrTail, true, nullptr);
  return true;
}

// One describing run of the binary.
struct DescribingRun {
  std::string cannot_run;  // non-empty: it could not be started (why)
  Output output;
  bool timed_out = false;
  int status = 0;  // waitpid()'s
};

DescribingRun run_describing(const std::string& binary, std::vector<std::string> variables,
                             milliseconds timeout) {
  DescribingRun run;
  std::vector<char*> envp;
  for (std::string& variable : variables) envp.push_back(variable.data());
  envp.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    run.cannot_run = std::string{"pipe2: "} + std::strerror(errno);
    return run;
  }
  Fd out_read{out_pipe[0]}, out_write{out_pipe[1]};
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    run.cannot_run = std::string{"pipe2: "} + std::strerror(errno);
    return run;
  }
  Fd err_read{err_pipe[0]}, err_write{err_pipe[1]};
  pid_t pid = -1;
  if (const int spawned = spawn_binary(binary, envp.data(), out_write.get(), err_write.get(), pid);
      spawned != 0) {
    run.cannot_run = std::strerror(spawned);
    return run;
  }
  out_write.reset();
  err_write.reset();
  Fd ended{detail::pidfd_open(pid)};
  ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_read.get(), F_SETFL, O_NONBLOCK);
  run.timed_out = !collect_output(out_read, err_read, ended, Clock::now() + timeout, run.output);
  // The whole group: the binary if it still runs, and anything it left behind. It is not reaped
  // yet, so its pid (the group's id) cannot have been reused.
  ::kill(-pid, SIGKILL);
  while (::waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {
  }
  return run;
}

}  // namespace

ServerOptions options_from_binary(const std::string& binary, const std::string& name,
                                  milliseconds timeout) {
  const std::string run_as = std::string{detail::kDescribeServerVariable} + "=" + name;
  const std::string intro = "--options-from=" + binary + ":" + name + ": '" + binary +
                            "' (run with " + run_as + " to print the options of its server '" +
                            name + "')";
  auto fail = [&](const std::string& what, const std::string& stderr_text = {}) {
    std::string message = intro + " " + what;
    if (stderr_text.find_first_not_of(" \t\r\n") != std::string::npos) {
      constexpr std::size_t kShown = 1000;
      const std::size_t from = stderr_text.size() > kShown ? stderr_text.size() - kShown : 0;
      message +=
          "; the end of its stderr: " + detail::quote_for_message(stderr_text.substr(from), kShown);
    }
    throw UsageError{message};
  };
  const DescribingRun run = run_describing(binary, describing_environment(run_as), timeout);
  const Output& output = run.output;
  const int status = run.status;
  if (!run.cannot_run.empty()) fail("cannot be run: " + run.cannot_run);
  if (run.timed_out) {
    fail("did not finish within " + std::to_string(timeout.count()) + " ms and was killed",
         output.err);
  }
  if (output.out_overflow) {
    fail("printed more than " + std::to_string(kMaxStdout) +
             " bytes on stdout instead of one line "
             "of options (is it a procfix test binary?)",
         output.err);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const ExitStatus how = WIFEXITED(status) ? ExitStatus::exited(WEXITSTATUS(status))
                                             : ExitStatus::killed_by(WTERMSIG(status));
    fail(how.describe(), output.err);
  }
  const std::string hint = " (its main() must call procfix::add_global_server() for '" + name +
                           "' before RUN_ALL_TESTS(), with a procfix that knows " +
                           detail::kDescribeServerVariable + ")";
  const std::string_view line = last_line(output.out);
  if (line.empty()) fail("printed nothing on stdout" + hint, output.err);
  const nlohmann::json options = nlohmann::json::parse(line, nullptr, false);
  if (!options.is_object()) {
    fail("printed no options: its last line on stdout is " + detail::quote_for_message(line, 200) +
             ", not a JSON object" + hint,
         output.err);
  }
  try {
    return detail::options_from_json(options);
  } catch (const OptionsError& e) {
    fail(std::string{"printed options that cannot be used: "} + e.what());
  }
  return {};  // not reached: fail() throws
}

}  // namespace procfix::run
