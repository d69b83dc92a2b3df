// A suite whose servers all fail to start (sample_child --exit-before-ready=3), one per scope:
// global, per suite, per test. Run by gtest_scopes_test.cpp, which checks that every test fails
// with the start error's message instead of crashing the binary or passing.
#include <gtest/gtest.h>

#include <chrono>

#include "procfix/fixtures/environment.hpp"

using namespace std::chrono_literals;

namespace {

procfix::ServerOptions failing(const char* name) {
  return {.executable = PROCFIX_SAMPLE_CHILD,
          .args = {"--stderr-lines=1", "--exit-before-ready=3"},
          .name = name,
          .ready_timeout = 30s};
}

procfix::ServerEnvironment* g_global = nullptr;

TEST(GlobalScope, UsesTheServer) {
  (void)g_global->endpoint();
}

class SuiteScope : public procfix::ServerSuite<SuiteScope> {
 public:
  static procfix::ServerOptions server_options() { return failing("suite-server"); }
};

TEST_F(SuiteScope, FirstTest) {
  (void)endpoint();
}

TEST_F(SuiteScope, SecondTest) {
  (void)endpoint();
}

class TestScope : public procfix::ServerTest {
 protected:
  procfix::ServerOptions server_options() const override { return failing("test-server"); }
};

TEST_F(TestScope, UsesTheServer) {
  (void)endpoint();
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_global = procfix::add_global_server(failing("global-server"));
  return RUN_ALL_TESTS();
}
