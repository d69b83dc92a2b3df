// GoogleTest integration seen from outside: a start failure in each scope fails every affected
// test with the reason, and --gtest_list_tests (what gtest_discover_tests runs) spawns nothing.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Result run_suite(std::vector<std::string> args) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error{"pipe2"};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  args.insert(args.begin(), FAILING_STARTS_SUITE);
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (::posix_spawn(&pid, FAILING_STARTS_SUITE, &actions, nullptr, argv.data(), environ) != 0) {
    throw std::runtime_error{"posix_spawn"};
  }
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  Result result;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) result.output.append(buffer, n);
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(GtestScopes, AStartFailureInEveryScopeFailsEachTestWithTheReason) {
  const Result result = run_suite({});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  for (const char* test : {"GlobalScope.UsesTheServer", "SuiteScope.FirstTest",
                           "SuiteScope.SecondTest", "TestScope.UsesTheServer"}) {
    EXPECT_THAT(result.output, HasSubstr(std::string{"[  FAILED  ] "} + test)) << result.output;
  }
  for (const char* server : {"global-server", "suite-server", "test-server"}) {
    EXPECT_THAT(result.output, HasSubstr(std::string{"server '"} + server + "' (pid "));
  }
  EXPECT_THAT(result.output, HasSubstr("exited with status 3 before it was ready"));
  EXPECT_THAT(result.output, HasSubstr("sample_child stderr line 1"));
  EXPECT_THAT(result.output, HasSubstr("4 FAILED TESTS"));
}

// In a child that is a subreaper: whatever the listing run spawned (a supervisor, a server) and
// left behind would be re-parented to it and found by waitid() after the listing has exited.
TEST(GtestScopesDeathTest, ListingTestsSpawnsNothing) {
  EXPECT_EXIT(
      {
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        const Result listing = run_suite({"--gtest_list_tests"});
        if (listing.exit_code != 0 || listing.output.find("UsesTheServer") == std::string::npos) {
          std::fprintf(stderr, "listing failed: %s\n", listing.output.c_str());
          std::_Exit(2);
        }
        siginfo_t info{};
        const int found = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG);
        if (found == 0 && info.si_pid != 0) {
          std::fprintf(stderr, "the listing left pid %d behind\n", info.si_pid);
          std::_Exit(1);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
