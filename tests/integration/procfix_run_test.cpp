// procfix-run driven as a subprocess, as a Python or shell test suite would.
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "procfix/fixtures/endpoint.hpp"
#include "support/line_client.hpp"
#include "support/process_census.hpp"

extern char** environ;

namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// procfix-run with pipes on stdin, stdout and stderr.
class RunProcess {
 public:
  explicit RunProcess(std::vector<std::string> args) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
      throw std::runtime_error{"pipe2"};
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    args.insert(args.begin(), PROCFIX_RUN);
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, PROCFIX_RUN, &actions, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error{"posix_spawn procfix-run"};
    }
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
  }
  ~RunProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {stdin_, stdout_, stderr_}) {
      if (fd >= 0) ::close(fd);
    }
  }

  // The next line on stdout ("" at EOF).
  std::string line() {
    std::string text;
    char c;
    while (::read(stdout_, &c, 1) == 1 && c != '\n') text += c;
    return text;
  }
  void close_stdin() {
    ::close(stdin_);
    stdin_ = -1;
  }
  // Waits for procfix-run to exit; returns its exit status (-1 if killed).
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string all_stdout() { return read_all(stdout_); }
  std::string all_stderr() { return read_all(stderr_); }
  static std::string read_all(int fd) {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, n);
    return text;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
};

TEST(ProcfixRun, PrintsTheEndpointServesAndStopsCleanlyOnStdinEof) {
  RunProcess run{{"--", PROCFIX_SAMPLE_CHILD}};
  const json ready = json::parse(run.line());
  EXPECT_EQ(ready.at("ready"), true);
  const procfix::Endpoint endpoint{ready.at("message")};
  EXPECT_EQ(ready.at("address"), endpoint.address());
  EXPECT_EQ(procfix::testing::exchange_line(endpoint, "ping"), "pong");
  run.close_stdin();
  const json stopped = json::parse(run.line());
  EXPECT_EQ(stopped.at("ok"), true) << stopped.dump();
  EXPECT_EQ(stopped.at("exit").at("status"), 0);
  EXPECT_EQ(stopped.at("needed_kill"), false);
  EXPECT_EQ(run.line(), "");  // nothing else on stdout
  EXPECT_EQ(run.wait(), 0);
}

TEST(ProcfixRun, StopsOnSigtermAndSigint) {
  for (const int signal : {SIGTERM, SIGINT}) {
    RunProcess run{{"--", PROCFIX_SAMPLE_CHILD}};
    ASSERT_FALSE(run.line().empty());
    ::kill(run.pid(), signal);
    EXPECT_EQ(json::parse(run.line()).at("ok"), true) << "signal " << signal;
    EXPECT_EQ(run.wait(), 0) << "signal " << signal;
  }
}

TEST(ProcfixRun, AServerEndingByItselfIsReportedExitOne) {
  RunProcess run{{"--", PROCFIX_SAMPLE_CHILD}};
  const json ready = json::parse(run.line());
  ::kill(ready.at("pid").get<pid_t>(), SIGTERM);  // behind procfix-run's back
  const json stopped = json::parse(run.line());
  EXPECT_EQ(stopped.at("exited_before_stop"), true) << stopped.dump();
  EXPECT_EQ(stopped.at("ok"), false);
  EXPECT_EQ(run.wait(), 1);
}

TEST(ProcfixRun, EveryReadinessModeFromTheCommandLine) {
  {
    RunProcess notify{{"--ready=notify:127.0.0.1:1", "--", PROCFIX_SAMPLE_CHILD}};
    EXPECT_EQ(json::parse(notify.line()).at("address"), "127.0.0.1:1");
    notify.close_stdin();
    EXPECT_EQ(notify.wait(), 0);
  }
  {
    RunProcess line{
        {"--ready=line:listening on (\\S+)", "--", PROCFIX_SAMPLE_CHILD, "--ready-line=stderr"}};
    const json ready = json::parse(line.line());
    const procfix::Endpoint endpoint{json{{"address", ready.at("address")}}};
    EXPECT_EQ(procfix::testing::exchange_line(endpoint, "ping"), "pong");
    line.close_stdin();
    EXPECT_EQ(line.wait(), 0);
  }
  {
    RunProcess socket{{"--ready=socket", "--", PROCFIX_SAMPLE_CHILD, "--listen-fds"}};
    const json ready = json::parse(socket.line());
    const procfix::Endpoint endpoint{json{{"address", ready.at("address")}}};
    EXPECT_EQ(procfix::testing::exchange_line(endpoint, "ping"), "pong");
    socket.close_stdin();
    EXPECT_EQ(socket.wait(), 0);
  }
}

TEST(ProcfixRun, HelpNamesEveryOptionAndExitsZero) {
  RunProcess help{{"--help"}};
  const std::string text = help.all_stdout();
  EXPECT_EQ(help.wait(), 0);
  for (const char* option :
       {"--ready=fd", "--ready=notify", "--ready=line:", "--ready=socket",
        "--ready-timeout=", "--stop-signal=", "--stop-grace=", "--expect-exit=", "--user=",
        "--cwd=", "--env=", "--log-dir=", "--name="}) {
    EXPECT_THAT(text, HasSubstr(option));
  }
}

TEST(ProcfixRun, StartFailureExitsThreeWithTheReasonOnStderr) {
  RunProcess run{{"--", PROCFIX_SAMPLE_CHILD, "--exit-before-ready=4", "--stderr-lines=1"}};
  EXPECT_EQ(run.line(), "");  // nothing on stdout
  EXPECT_EQ(run.wait(), 3);
  const std::string err = run.all_stderr();
  EXPECT_THAT(err, HasSubstr("exited with status 4 before it was ready"));
  EXPECT_THAT(err, HasSubstr("sample_child stderr line 1"));
}

TEST(ProcfixRun, DeadlineAndMalformedMessageExitThree) {
  RunProcess late{{"--ready-timeout=300", "--", PROCFIX_SAMPLE_CHILD, "--never-ready"}};
  EXPECT_EQ(late.line(), "");  // nothing on stdout: no ready line for a server that is not
  EXPECT_EQ(late.wait(), 3);
  EXPECT_THAT(late.all_stderr(), HasSubstr("not ready within its ready_timeout of 300 ms"));
  RunProcess malformed{{"--", PROCFIX_SAMPLE_CHILD, "--malformed-json"}};
  EXPECT_EQ(malformed.line(), "");
  EXPECT_EQ(malformed.wait(), 3);
  EXPECT_THAT(malformed.all_stderr(), HasSubstr("not a JSON object"));
}

TEST(ProcfixRun, IgnoredSigtermIsKilledAndReportedExitOne) {
  RunProcess run{{"--stop-grace=200", "--", PROCFIX_SAMPLE_CHILD, "--ignore-sigterm"}};
  ASSERT_FALSE(run.line().empty());
  run.close_stdin();
  const json stopped = json::parse(run.line());
  EXPECT_EQ(stopped.at("ok"), false);
  EXPECT_EQ(stopped.at("needed_kill"), true);
  EXPECT_EQ(stopped.at("exit").at("signal_name"), "SIGKILL");
  EXPECT_EQ(run.wait(), 1);
}

TEST(ProcfixRun, LeakedGrandchildIsReportedExitOne) {
  RunProcess run{{"--", PROCFIX_SAMPLE_CHILD, "--leak-grandchild=setsid"}};
  ASSERT_FALSE(run.line().empty());
  run.close_stdin();
  const json stopped = json::parse(run.line());
  ASSERT_EQ(stopped.at("leaks").size(), 1u) << stopped.dump();
  const pid_t leaked = stopped.at("leaks")[0].at("pid");
  EXPECT_THAT(stopped.at("leaks")[0].at("command_line").get<std::string>(),
              HasSubstr("sample_child"));
  EXPECT_NE(::kill(leaked, 0), 0);  // gone, not even a zombie
  EXPECT_EQ(run.wait(), 1);
}

TEST(ProcfixRun, BadUsageExitsTwo) {
  RunProcess run{{"--no-such-option=1", "--", "x"}};
  EXPECT_EQ(run.wait(), 2);
  EXPECT_THAT(run.all_stderr(), HasSubstr("unknown option '--no-such-option'"));
}

TEST(ProcfixRun, OptionsTheFixturesRejectAreUsageErrorsNamingTheOption) {
  RunProcess zero{{"--ready-timeout=0", "--", PROCFIX_SAMPLE_CHILD}};
  EXPECT_EQ(zero.wait(), 2);
  EXPECT_THAT(zero.all_stderr(), HasSubstr("--ready-timeout must be positive"));
  RunProcess regex{{"--ready=line:(", "--", PROCFIX_SAMPLE_CHILD}};
  EXPECT_EQ(regex.wait(), 2);
  EXPECT_THAT(regex.all_stderr(), HasSubstr("--ready=line: pattern '(' is not a valid regular"));
}

TEST(ProcfixRun, UnsetEnvRemovesAnInheritedVariable) {
  ASSERT_EQ(::setenv("PROCFIX_RUN_INHERITED", "from the test", 1), 0);
  RunProcess run{{"--unset-env=PROCFIX_RUN_INHERITED", "--", PROCFIX_SAMPLE_CHILD,
                  "--report-env=PROCFIX_RUN_INHERITED", "--report-env=PATH"}};
  ::unsetenv("PROCFIX_RUN_INHERITED");
  const json ready = json::parse(run.line());
  EXPECT_TRUE(ready.at("message").at("env").at("PROCFIX_RUN_INHERITED").is_null());
  EXPECT_TRUE(ready.at("message").at("env").at("PATH").is_string());  // the rest is inherited
  run.close_stdin();
  EXPECT_EQ(run.wait(), 0);
  RunProcess both{{"--env=A=1", "--unset-env=A", "--", PROCFIX_SAMPLE_CHILD}};
  EXPECT_EQ(both.wait(), 2);
  EXPECT_THAT(both.all_stderr(), HasSubstr("--unset-env names 'A', which .env sets"));
}

using procfix::testing::descendants;

TEST(ProcfixRun, NothingSurvivesASigkilledProcfixRun) {
  RunProcess run{{"--", PROCFIX_SAMPLE_CHILD, "--leak-grandchild=setsid"}};
  ASSERT_FALSE(run.line().empty());
  std::vector<pid_t> tree = descendants(run.pid());  // supervisor, server, grandchild
  ASSERT_GE(tree.size(), 2u);
  std::vector<pollfd> handles;
  for (pid_t pid : tree) {
    handles.push_back({static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)), POLLIN, 0});
  }
  ::kill(run.pid(), SIGKILL);
  EXPECT_EQ(run.wait(), -1);
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (handles[i].fd < 0) continue;  // already gone
    EXPECT_EQ(::poll(&handles[i], 1, 10'000), 1) << "pid " << tree[i] << " survived";
    ::close(handles[i].fd);
  }
}

}  // namespace
