// Test support for the fault cases that run whole commands (procfix-run, cmake, ctest): run one,
// collect its stdout and stderr apart until EOF, stdin /dev/null, every wait bounded (unlike
// tests/support/command.hpp, which merges the streams and waits without a bound).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace procfix::testing {

struct BoundedRun {
  int status = -2;  // exit status; -1 killed by a signal; -2 it (or whoever holds its pipes) hung
  std::string out, err;
};

// Runs argv (argv[0] looked up in PATH) with stdin /dev/null and pipes on stdout and stderr,
// reading both until EOF. If that takes more than `hang_ms` (a bound that only catches a hang),
// the command is SIGKILLed and the status is -2.
inline BoundedRun run_bounded(std::vector<std::string> args, int hang_ms = 60'000) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error{"pipe2"};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  BoundedRun result;
  if (spawned != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error{"posix_spawnp " + args[0]};
  }
  bool open[2] = {true, true};
  bool hung = false;
  while (open[0] || open[1]) {
    pollfd fds[2] = {{open[0] ? out[0] : -1, POLLIN, 0}, {open[1] ? err[0] : -1, POLLIN, 0}};
    if (::poll(fds, 2, hang_ms) <= 0) {
      hung = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(i == 0 ? out[0] : err[0], buffer, sizeof buffer);
      if (n <= 0) {
        open[i] = false;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  if (hung) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.status = hung ? -2 : WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A bound that only catches a hang (never reached by a working procfix-run).
inline constexpr int kHangMs = 20'000;

#ifdef PROCFIX_RUN
// `procfix-run ARGS` through run_bounded(), bounded by kHangMs: a keeper that held its stdout or
// stderr would make this hang (status -2).
inline BoundedRun run_procfix_run(std::vector<std::string> args) {
  args.insert(args.begin(), PROCFIX_RUN);
  return run_bounded(std::move(args), kHangMs);
}
#endif

}  // namespace procfix::testing
