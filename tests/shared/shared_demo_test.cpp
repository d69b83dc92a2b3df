// Issue 12: 20 tiny tests against one sample_child. Under ctest with the label shared-server-demo
// they all use one server kept for the whole run (PROCFIX_SHARED_SHARED_DEMO, set by
// procfix_require_shared_server's properties); with the label shared-server-baseline, or run
// directly, the global environment starts a server per test process. The C++ is the same, and
// its options in main() are the only definition of the server (FROM_TEST_BINARY in CMake).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "procfix/fixtures/environment.hpp"
#include "support/line_client.hpp"

namespace {

procfix::ServerEnvironment* server = nullptr;

// Each test uses its own key prefix (the test's name): the isolation pattern of
// docs/shared-servers.md, so tests sharing the server do not see each other's data.
std::string key_prefix() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string{info->test_suite_name()} + "." + info->name() + ".";
}

// Records which server this test used: the shared one in <state file>.seen
// (shared_demo.one_start); its own, under the baseline label, in $PROCFIX_DEMO_SEEN (tools/bench
// counts the starts).
void record_server() {
  const char* baseline = std::getenv("PROCFIX_DEMO_SEEN");
  const std::string seen = !server->shared_state_file().empty()
                               ? server->shared_state_file() + ".seen"
                           : baseline != nullptr ? baseline
                                                 : "";
  if (seen.empty()) return;
  const int fd = ::open(seen.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << seen;
  const std::string line = std::to_string(server->pid()) + "\n";
  EXPECT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  ::close(fd);
}

void exercise() {
  record_server();
  procfix::testing::LineClient client{server->endpoint()};
  EXPECT_EQ(client.exchange("ping"), "pong");
  EXPECT_EQ(client.exchange("echo " + key_prefix() + "value"), key_prefix() + "value");
  EXPECT_EQ(client.exchange("pid"), std::to_string(server->pid()));
}

}  // namespace

#define PROCFIX_DEMO_TEST(n)  \
  TEST(SharedDemo, Test##n) { \
    exercise();               \
  }
PROCFIX_DEMO_TEST(01)
PROCFIX_DEMO_TEST(02)
PROCFIX_DEMO_TEST(03)
PROCFIX_DEMO_TEST(04)
PROCFIX_DEMO_TEST(05)
PROCFIX_DEMO_TEST(06)
PROCFIX_DEMO_TEST(07)
PROCFIX_DEMO_TEST(08)
PROCFIX_DEMO_TEST(09)
PROCFIX_DEMO_TEST(10)
PROCFIX_DEMO_TEST(11)
PROCFIX_DEMO_TEST(12)
PROCFIX_DEMO_TEST(13)
PROCFIX_DEMO_TEST(14)
PROCFIX_DEMO_TEST(15)
PROCFIX_DEMO_TEST(16)
PROCFIX_DEMO_TEST(17)
PROCFIX_DEMO_TEST(18)
PROCFIX_DEMO_TEST(19)
PROCFIX_DEMO_TEST(20)

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // The only definition of the server: under ctest, procfix_add_shared_server(NAME shared_demo
  // FROM_TEST_BINARY shared_demo_tests) runs this binary with PROCFIX_DESCRIBE_SERVER=shared_demo,
  // and this call prints these options and exits; the setup test starts the shared server with
  // them. Run directly (or with the baseline label), the call starts a server with them.
  server = procfix::add_global_server({.executable = PROCFIX_SAMPLE_CHILD, .name = "shared_demo"});
  return RUN_ALL_TESTS();
}
