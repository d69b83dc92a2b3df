// The examples of docs/groups.md (ctest label server-group-demo): a proxy in front of
// sample_child, one group per suite and one per test; PostgreSQL plus a proxy that needs its
// socket path. groups_tests reads this binary's XML report and traces a `ctest -j2` run of it.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "can_run_postgres.hpp"
#include "procfix/fixtures/group_environment.hpp"
#include "support/command.hpp"
#include "support/line_client.hpp"

namespace {

using namespace std::chrono_literals;
using procfix::Dependencies;
using procfix::GroupMember;
using procfix::ServerOptions;

// The proxy, told where its upstream listens once that is ready.
ServerOptions proxy_in_front_of(const Dependencies& ready, const std::string& upstream) {
  return {.executable = PROCFIX_LINE_PROXY,
          .args = {"--upstream=" + ready.endpoint(upstream).address()}};
}

// One backend and a proxy in front of it, for the whole suite.
class ProxyDemo : public procfix::ServerGroupSuite<ProxyDemo> {
 public:
  static std::vector<GroupMember> server_group() {
    return {
        {.name = "backend", .options = {.executable = PROCFIX_SAMPLE_CHILD}},
        {.name = "proxy",
         .depends_on = {"backend"},
         .factory = [](const Dependencies& d) { return proxy_in_front_of(d, "backend"); }},
    };
  }
};

TEST_F(ProxyDemo, PingThroughTheProxy) {
  EXPECT_EQ(procfix::testing::exchange_line(endpoint("proxy"), "ping"), "pong");
}

TEST_F(ProxyDemo, TheProxyForwardsToTheBackend) {
  EXPECT_EQ(endpoint("proxy").message().value("upstream", ""), endpoint("backend").address());
  const std::string pid = procfix::testing::exchange_line(endpoint("proxy"), "pid");
  EXPECT_EQ(pid, std::to_string(server("backend").pid()));
}

// A fresh pair per test; the factory prepares a config file that names the upstream's port.
class ProxyPerTest : public procfix::ServerGroupTest {
 protected:
  std::vector<GroupMember> server_group() const override {
    return {
        {.name = "backend", .options = {.executable = PROCFIX_SAMPLE_CHILD}},
        {.name = "proxy",
         .depends_on = {"backend"},
         .factory =
             [config = config_](const Dependencies& d) {
               std::ofstream{config} << "upstream " << d.endpoint("backend").address() << "\n";
               return ServerOptions{.executable = PROCFIX_LINE_PROXY,
                                    .args = {"--config=" + config}};
             }},
    };
  }
  void TearDown() override {
    ServerGroupTest::TearDown();
    std::filesystem::remove(config_);
  }
  std::string config_ = ::testing::TempDir() + "proxy-" + std::to_string(::getpid()) + ".conf";
};

TEST_F(ProxyPerTest, EchoThroughAProxyConfiguredByFile) {
  EXPECT_EQ(procfix::testing::exchange_line(endpoint("proxy"), "echo group"), "group");
}

// PostgreSQL (initdb + postgres as procfix-test, notify readiness) and a TCP proxy that needs
// its unix socket path: the proxy's factory gets the socket directory from PostgreSQL's endpoint.
class PostgresBehindAProxy : public procfix::ServerGroupTest {
 protected:
  std::vector<GroupMember> server_group() const override {
    return {
        {.name = "postgres",
         .options = {.executable = PROCFIX_PG_SERVER,
                     .args = {dir_},
                     .ready_timeout = 60s,
                     .stop_signal = SIGINT,  // "fast shutdown"
                     .stop_grace = 30s,
                     .readiness = procfix::Readiness::notify_socket(dir_),
                     .user = "procfix-test"}},
        {.name = "proxy",
         .depends_on = {"postgres"},
         .factory =
             [](const Dependencies& d) {
               return ServerOptions{
                   .executable = PROCFIX_LINE_PROXY,
                   .args = {"--upstream=" + d.endpoint("postgres").address() + "/.s.PGSQL.5432"}};
             }},
    };
  }
  void SetUp() override {
    if (!procfix::testing::can_run_postgres()) {
      GTEST_SKIP() << "needs root (not in a user namespace), the user procfix-test and "
                      "PostgreSQL 15, and no sanitizer (see tests/groups/can_run_postgres.hpp)";
    }
    ServerGroupTest::SetUp();
  }
  void TearDown() override {
    ServerGroupTest::TearDown();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string dir_ = "/tmp/procfix-pg-group-" + std::to_string(::getpid());
};

TEST_F(PostgresBehindAProxy, QueryThroughTheProxy) {
  const auto result = procfix::testing::run_command(
      {"psql", "-h", endpoint("proxy").host(), "-p", std::to_string(endpoint("proxy").port()), "-U",
       "postgres", "-d", "postgres", "-tAq", "-c", "SELECT 40 + 2"});
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(result.output, "42\n");
}

}  // namespace
