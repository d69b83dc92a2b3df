// The example suite: one server for the whole binary, one per suite, one per test; each test
// exchanges real TCP traffic with sample_child at the address it reported.
#include <gtest/gtest.h>

#include <chrono>

#include "procfix/fixtures/environment.hpp"
#include "support/line_client.hpp"

using namespace std::chrono_literals;
using procfix::testing::exchange_line;
using procfix::testing::LineClient;

namespace {

// 1. One server for the whole test binary, registered in main() below.
procfix::ServerEnvironment* g_shared_server = nullptr;

TEST(GlobalServer, AnswersPing) {
  EXPECT_EQ(exchange_line(g_shared_server->endpoint(), "ping"), "pong");
}

TEST(GlobalServer, EchoesOverOneConnection) {
  LineClient client{g_shared_server->endpoint()};
  EXPECT_EQ(client.exchange("echo hello"), "hello");
  EXPECT_EQ(client.exchange("echo world"), "world");
}

TEST(GlobalServer, ReportsItsPidInTheReadinessMessage) {
  const auto& message = g_shared_server->endpoint().message();
  EXPECT_EQ(message.at("pid").get<pid_t>(), g_shared_server->server().pid());
  EXPECT_EQ(exchange_line(g_shared_server->endpoint(), "pid"),
            std::to_string(g_shared_server->server().pid()));
}

// 2. One server per test suite.
class SuiteServer : public procfix::ServerSuite<SuiteServer> {
 public:
  static procfix::ServerOptions server_options() {
    return {.executable = PROCFIX_SAMPLE_CHILD, .name = "suite sample_child", .ready_timeout = 30s};
  }
};

TEST_F(SuiteServer, AnswersPing) {
  EXPECT_EQ(exchange_line(endpoint(), "ping"), "pong");
}

TEST_F(SuiteServer, DoesWork) {
  EXPECT_EQ(exchange_line(endpoint(), "work 5"), "done");
}

// 3. One fresh server per test, here on IPv6.
class FreshServer : public procfix::ServerTest {
 protected:
  procfix::ServerOptions server_options() const override {
    return {.executable = PROCFIX_SAMPLE_CHILD, .args = {"--ipv6"}, .ready_timeout = 30s};
  }
};

TEST_F(FreshServer, AnswersPingOverIpv6) {
  EXPECT_EQ(endpoint().host(), "::1");
  EXPECT_EQ(exchange_line(endpoint(), "ping"), "pong");
}

TEST_F(FreshServer, IsANewProcessForEachTest) {
  EXPECT_NE(server().pid(), g_shared_server->server().pid());
  EXPECT_EQ(exchange_line(endpoint(), "echo fresh"), "fresh");
}

// A death test in a binary with a global server: the forked (or re-executed) child must never
// stop the parent's server, which still answers afterwards.
TEST(GlobalServerDeathTest, DyingChildLeavesTheGlobalServerRunning) {
  EXPECT_DEATH(
      {
        (void)exchange_line(g_shared_server->endpoint(), "ping");
        std::abort();
      },
      "");
  EXPECT_EQ(exchange_line(g_shared_server->endpoint(), "ping"), "pong");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_shared_server = procfix::add_global_server({
      .executable = PROCFIX_SAMPLE_CHILD,
      .name = "global sample_child",
      .ready_timeout = 30s,
      .stop_grace = 5s,
  });
  return RUN_ALL_TESTS();
}
