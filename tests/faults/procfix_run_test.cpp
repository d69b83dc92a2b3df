// The fault matrix for procfix-run (docs/cli.md): driven as a subprocess, as a test suite in
// another language would, with adversarial children and every wait bounded.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bounded_run.hpp"
#include "fault_support.hpp"
#include "procfix/fixtures/endpoint.hpp"
#include "procfix/fixtures/exit_status.hpp"
#include "support/line_client.hpp"

extern char** environ;

namespace {

using nlohmann::json;
using procfix::testing::fault_child;
using procfix::testing::survivors_with;
using procfix::testing::unique_token;
using ::testing::HasSubstr;

using procfix::testing::kHangMs;

// procfix-run with pipes on stdout and stderr, and on stdin unless `stdin_closed`.
class CliRun {
 public:
  explicit CliRun(std::vector<std::string> args, bool stdin_closed = false) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
      throw std::runtime_error{"pipe2"};
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdin_closed) {
      posix_spawn_file_actions_addclose(&actions, 0);
    } else {
      posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    }
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    args.insert(args.begin(), PROCFIX_RUN);
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int spawned = ::posix_spawn(&pid_, PROCFIX_RUN, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (spawned != 0) throw std::runtime_error{"posix_spawn procfix-run"};
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
  }
  ~CliRun() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {stdin_, stdout_, stderr_, pidfd_}) {
      if (fd >= 0) ::close(fd);
    }
  }

  // The next line on stdout ("" at EOF, or if none comes within kHangMs).
  std::string line() {
    std::string text;
    for (char c;;) {
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, kHangMs) != 1 || ::read(stdout_, &c, 1) != 1 || c == '\n') return text;
      text += c;
    }
  }
  void close_stdin() {
    ::close(stdin_);
    stdin_ = -1;
  }
  // procfix-run's exit status; -1 if it was killed, -2 if it did not exit within kHangMs.
  int wait() {
    pollfd p{pidfd_, POLLIN, 0};
    if (::poll(&p, 1, kHangMs) != 1) return -2;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // Everything on stderr until EOF (call after wait()).
  std::string all_stderr() {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(stderr_, buffer, sizeof buffer)) > 0;) text.append(buffer, n);
    return text;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
};

// A FIFO in a fresh directory, removed at the end.
class Fifo {
 public:
  Fifo() {
    char pattern[] = "/tmp/procfix-run-fault-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    path_ = dir_ + "/fifo";
    ::mkfifo(path_.c_str(), 0600);
    fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  }
  ~Fifo() {
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  // The first bytes a writer sends ("" if none within kHangMs).
  std::string read_some() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, kHangMs) != 1) return {};
    char buffer[256];
    const ssize_t n = ::read(fd_, buffer, sizeof buffer);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string{};
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

std::string fd_target(pid_t pid, int fd) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd),
                                       ec)
      .string();
}

// Issue 13 item 5: started with stdin closed (`<&-`, not at EOF), procfix-run took its own
// signalfd as fd 0. Now fd 0 is /dev/null, a closed stdin is not taken for EOF (the server keeps
// serving), and SIGTERM stops it.
TEST(FaultProcfixRun, ClosedStdinIsNoEofAndNeverBecomesOneOfItsOwnFds) {
  CliRun run{{"--", PROCFIX_SAMPLE_CHILD}, /*stdin_closed=*/true};
  const std::string ready_line = run.line();
  ASSERT_FALSE(ready_line.empty());
  EXPECT_EQ(fd_target(run.pid(), 0), "/dev/null");
  const json ready = json::parse(ready_line);
  const procfix::Endpoint endpoint{ready.at("message")};
  EXPECT_EQ(procfix::testing::exchange_line(endpoint, "ping"), "pong");
  ::kill(run.pid(), SIGTERM);
  const json stopped = json::parse(run.line());
  EXPECT_EQ(stopped.value("cause", ""), "SIGTERM") << stopped.dump();  // not "stdin EOF"
  EXPECT_EQ(stopped.at("ok"), true) << stopped.dump();
  EXPECT_EQ(run.wait(), 0);
}

// Issue 13 item 5: SIGTERM/SIGINT while procfix-run waited for readiness were ignored until the
// ready deadline. Now the start ends at once: exit 3, the reason on stderr, nothing on stdout,
// and nothing it started (the server ignores SIGTERM and has a setsid()ed child) survives it.
TEST(FaultProcfixRun, SigtermOrSigintDuringTheStartEndsItAtOnceAndNothingSurvives) {
  for (const int sig : {SIGTERM, SIGINT}) {
    Fifo spawned;
    const std::string token = unique_token("procfix-run-start");
    CliRun run{
        {"--ready-timeout=600000", "--", fault_child("cli_never_ready"), spawned.path(), token}};
    ASSERT_EQ(spawned.read_some(), "spawned\n") << "signal " << sig;
    ::kill(run.pid(), sig);
    EXPECT_EQ(run.wait(), 3) << "signal " << sig;
    EXPECT_EQ(run.line(), "") << "signal " << sig;
    EXPECT_THAT(run.all_stderr(), HasSubstr("interrupted by " + procfix::signal_name(sig) +
                                            " while waiting for readiness"));
    // procfix-run has exited: nothing may be left, not even for a moment.
    EXPECT_TRUE(procfix::testing::processes_with(token).empty()) << "signal " << sig;
    EXPECT_TRUE(survivors_with(token).empty()) << "signal " << sig;
  }
}

// Issue 13 item 2: a ready line or STATUS= with bytes that are not UTF-8 made
// endpoint().message().dump() throw and procfix-run abort (exit 134). Now they are printed as
// U+FFFD and the run goes on.
TEST(FaultProcfixRun, InvalidUtf8InAReadinessMessageIsReplacedNotFatal) {
  const std::string replacement = "\xEF\xBF\xBD";  // U+FFFD
  {
    CliRun run{{"--ready=line:^ready .* at (\\S+)$", "--", fault_child("cli_bad_utf8"), "line"}};
    const std::string text = run.line();
    ASSERT_FALSE(text.empty()) << run.all_stderr();
    const json ready = json::parse(text);
    EXPECT_EQ(ready.at("address"), "127.0.0.1:1");
    EXPECT_EQ(ready.at("message").at("line"),
              "ready " + replacement + replacement + " at 127.0.0.1:1");
    run.close_stdin();
    EXPECT_EQ(json::parse(run.line()).at("ok"), true);
    EXPECT_EQ(run.wait(), 0);
  }
  {
    CliRun run{{"--ready=notify:127.0.0.1:1", "--", fault_child("cli_bad_utf8"), "notify"}};
    const std::string text = run.line();
    ASSERT_FALSE(text.empty()) << run.all_stderr();
    EXPECT_EQ(json::parse(text).at("message").at("status"), replacement);
    run.close_stdin();
    EXPECT_EQ(json::parse(run.line()).at("ok"), true);
    EXPECT_EQ(run.wait(), 0);
  }
}

// Issue 13 item 12: a huge --stop-grace (milliseconds::max()) overflowed the deadline: an
// immediate SIGKILL of a clean server. Now a huge grace (and "inf") means no limit.
TEST(FaultProcfixRun, HugeStopGraceDoesNotKillACleanServerAtOnce) {
  for (const char* grace :
       {"--stop-grace=9223372036854775807", "--stop-grace=99999999999999", "--stop-grace=inf"}) {
    CliRun run{{grace, "--", PROCFIX_SAMPLE_CHILD}};
    ASSERT_FALSE(run.line().empty()) << grace;
    run.close_stdin();
    const json stopped = json::parse(run.line());
    EXPECT_EQ(stopped.at("needed_kill"), false) << grace << ": " << stopped.dump();
    EXPECT_EQ(stopped.at("exit").value("status", -1), 0) << grace << ": " << stopped.dump();
    EXPECT_EQ(run.wait(), 0) << grace;
  }
}

// Issue 13 item 12: a huge --ready-timeout (292 years) overflowed the deadline: an instant
// timeout. Now a huge timeout (even beyond 64 bits, and "inf") means no limit.
TEST(FaultProcfixRun, HugeReadyTimeoutIsNoLimitNotAnInstantTimeout) {
  for (const char* timeout :
       {"--ready-timeout=9223372036854", "--ready-timeout=9223372036854775807",
        "--ready-timeout=999999999999999999999", "--ready-timeout=inf"}) {
    CliRun run{{timeout, "--", PROCFIX_SAMPLE_CHILD, "--start-delay=50"}};
    const std::string text = run.line();
    ASSERT_FALSE(text.empty()) << timeout << ": " << run.all_stderr();
    EXPECT_EQ(json::parse(text).at("ready"), true);
    run.close_stdin();
    EXPECT_EQ(json::parse(run.line()).at("ok"), true) << timeout;
    EXPECT_EQ(run.wait(), 0) << timeout;
  }
}

}  // namespace
