// Groups whose member "…-db" fails to start (sample_child --exit-before-ready=3), one per scope.
// Run by group_scopes_test.cpp, which checks where each failure is reported: at the lines of the
// TEST_Fs below, and of add_global_server_group() in main().
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "procfix/fixtures/group_environment.hpp"

namespace {

std::vector<procfix::GroupMember> failing(const std::string& prefix) {
  return {
      {.name = prefix + "-db",
       .options = {.executable = PROCFIX_SAMPLE_CHILD,
                   .args = {"--stderr-lines=1", "--exit-before-ready=3"}}},
      {.name = prefix + "-api",
       .depends_on = {prefix + "-db"},
       .options = {.executable = PROCFIX_SAMPLE_CHILD}},
  };
}

procfix::ServerGroupEnvironment* global = nullptr;

TEST(GlobalGroup, UsesIt) {
  (void)global->endpoint("global-api");
}

class SuiteGroup : public procfix::ServerGroupSuite<SuiteGroup> {
 public:
  static std::vector<procfix::GroupMember> server_group() { return failing("suite"); }
};

TEST_F(SuiteGroup, FirstTest) {
  (void)endpoint("suite-api");
}

TEST_F(SuiteGroup, SecondTest) {
  (void)endpoint("suite-api");
}

class TestGroup : public procfix::ServerGroupTest {
 protected:
  std::vector<procfix::GroupMember> server_group() const override { return failing("test"); }
};

TEST_F(TestGroup, UsesIt) {
  (void)endpoint("test-api");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  global = procfix::add_global_server_group([] { return failing("global"); });
  return RUN_ALL_TESTS();
}
