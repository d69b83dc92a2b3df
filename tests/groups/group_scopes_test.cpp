// ServerGroup in the GoogleTest scopes: per test and per suite here; a failing group in every
// scope (failing_group_suite) fails each test at the user's TEST_F line with the member's reason.
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "procfix/fixtures/group_environment.hpp"
#include "support/command.hpp"
#include "support/line_client.hpp"

namespace {

using procfix::Dependencies;
using procfix::GroupMember;
using procfix::ServerOptions;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<GroupMember> backend_and_proxy() {
  return {
      {.name = "backend", .options = {.executable = PROCFIX_SAMPLE_CHILD}},
      {.name = "proxy",
       .depends_on = {"backend"},
       .factory =
           [](const Dependencies& d) {
             return ServerOptions{.executable = PROCFIX_LINE_PROXY,
                                  .args = {"--upstream=" + d.endpoint("backend").address()}};
           }},
  };
}

// The line number of the first line of failing_group_suite.cpp containing `code`.
std::string line_of(const std::string& code) {
  std::ifstream source{PROCFIX_FAILING_GROUP_SOURCE};
  int number = 0;
  for (std::string line; std::getline(source, line);) {
    ++number;
    if (line.find(code) != std::string::npos) return std::to_string(number);
  }
  return "(not found)";
}

class GroupPerTest : public procfix::ServerGroupTest {
 protected:
  std::vector<GroupMember> server_group() const override { return backend_and_proxy(); }
};

TEST_F(GroupPerTest, EveryMemberIsReadyInTheTest) {
  EXPECT_EQ(procfix::testing::exchange_line(endpoint("proxy"), "ping"), "pong");
  EXPECT_EQ(procfix::testing::exchange_line(endpoint("backend"), "ping"), "pong");
}

class GroupPerSuite : public procfix::ServerGroupSuite<GroupPerSuite> {
 public:
  static std::vector<GroupMember> server_group() { return backend_and_proxy(); }
};

pid_t first_backend_pid = -1;

TEST_F(GroupPerSuite, FirstTestSeesTheGroup) {
  first_backend_pid = server("backend").pid();
  EXPECT_EQ(procfix::testing::exchange_line(endpoint("proxy"), "pid"),
            std::to_string(first_backend_pid));
}

TEST_F(GroupPerSuite, SecondTestSeesTheSameGroup) {
  if (first_backend_pid > 0) {
    EXPECT_EQ(server("backend").pid(), first_backend_pid);
  }
  EXPECT_EQ(procfix::testing::exchange_line(endpoint("proxy"), "ping"), "pong");
}

TEST(GroupScopes, AFailingGroupFailsEachTestAtItsOwnLineWithTheMembersReason) {
  const auto result = procfix::testing::run_command({PROCFIX_FAILING_GROUP_SUITE});
  EXPECT_EQ(result.status, 1) << result.output;
  for (const char* test : {"GlobalGroup.UsesIt", "SuiteGroup.FirstTest", "SuiteGroup.SecondTest",
                           "TestGroup.UsesIt"}) {
    EXPECT_THAT(result.output, HasSubstr(std::string{"[  FAILED  ] "} + test));
  }
  for (const char* member : {"global-db", "suite-db", "test-db"}) {
    EXPECT_THAT(result.output, HasSubstr(std::string{"server '"} + member + "' (pid "));
  }
  // Each test fails at its own TEST_F line; the global group at its add_global_server_group().
  for (const char* code :
       {"TEST_F(SuiteGroup, FirstTest)", "TEST_F(SuiteGroup, SecondTest)",
        "TEST_F(TestGroup, UsesIt)", "global = procfix::add_global_server_group("}) {
    EXPECT_THAT(result.output, HasSubstr("failing_group_suite.cpp:" + line_of(code) + ": Failure"))
        << code;
  }
  EXPECT_THAT(result.output, Not(HasSubstr("environment.hpp")));
  EXPECT_THAT(result.output, Not(HasSubstr("scope_slot.cpp")));
  EXPECT_THAT(result.output, HasSubstr("4 FAILED TESTS"));
}

}  // namespace
