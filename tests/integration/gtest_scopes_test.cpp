// GoogleTest integration seen from outside: a start failure in each scope fails every affected
// test with the reason, and --gtest_list_tests (what gtest_discover_tests runs) spawns nothing.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/command.hpp"

namespace {

using ::testing::HasSubstr;

procfix::testing::CommandResult run_suite(std::vector<std::string> args) {
  args.insert(args.begin(), FAILING_STARTS_SUITE);
  return procfix::testing::run_command(args);
}

TEST(GtestScopes, AStartFailureInEveryScopeFailsEachTestWithTheReason) {
  const procfix::testing::CommandResult result = run_suite({});
  EXPECT_EQ(result.status, 1) << result.output;
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
        const procfix::testing::CommandResult listing = run_suite({"--gtest_list_tests"});
        if (listing.status != 0 || listing.output.find("UsesTheServer") == std::string::npos) {
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
