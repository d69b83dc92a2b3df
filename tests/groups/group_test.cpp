// ServerGroup by hand: concurrent starts, dependents started as soon as their dependencies are
// ready, the reverse stop order, failures that name the member and leave nothing running, and
// members checked before anything spawns.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "procfix/fixtures/group.hpp"
#include "support/line_client.hpp"

namespace {

using namespace std::chrono_literals;
using procfix::Dependencies;
using procfix::GroupMember;
using procfix::ServerGroup;
using procfix::ServerOptions;
using ::testing::HasSubstr;

GroupMember sample(const std::string& name, std::vector<std::string> depends_on = {},
                   std::vector<std::string> args = {}) {
  return {.name = name,
          .depends_on = std::move(depends_on),
          .options = {.executable = PROCFIX_SAMPLE_CHILD, .args = std::move(args)}};
}

GroupMember proxy(const std::string& name, const std::string& upstream) {
  return {.name = name, .depends_on = {upstream}, .factory = [upstream](const Dependencies& d) {
            return ServerOptions{.executable = PROCFIX_LINE_PROXY,
                                 .args = {"--upstream=" + d.endpoint(upstream).address()}};
          }};
}

// Whether a process with this pid is alive (not a zombie) and has `token` on its command line.
bool alive_with(const std::string& token) {
  for (const auto& entry : std::filesystem::directory_iterator{"/proc"}) {
    std::string cmdline;
    if (FILE* f = std::fopen((entry.path() / "cmdline").c_str(), "r")) {
      for (int c; (c = std::fgetc(f)) != EOF;) cmdline += c == 0 ? ' ' : static_cast<char>(c);
      std::fclose(f);
    }
    if (cmdline.find(token) != std::string::npos &&
        cmdline.find("sample_child") != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(ServerGroup, IndependentServersStartConcurrently) {
  ServerGroup group{{sample("a"), sample("b"), sample("c")}};
  // Each was spawned before any of the others was ready: the start windows overlap.
  for (const char* x : {"a", "b", "c"}) {
    for (const char* y : {"a", "b", "c"}) {
      EXPECT_LT(group.server(x).timing().spawned, group.server(y).timing().ready) << x << " " << y;
    }
  }
  EXPECT_EQ(group.stop().size(), 3u);
}

TEST(ServerGroup, DependentStartsAfterItsDependencyIsReadyAndSeesItsEndpoint) {
  ServerGroup group{{proxy("proxy", "backend"), sample("backend")}};
  const procfix::Server& backend = group.server("backend");
  const procfix::Server& front = group.server("proxy");
  EXPECT_GE(front.timing().spawned, backend.timing().ready);
  EXPECT_EQ(front.endpoint().message().value("upstream", ""), backend.endpoint().address());
  EXPECT_EQ(procfix::testing::exchange_line(front.endpoint(), "pid"),
            std::to_string(backend.pid()));
  EXPECT_EQ(group.names(), (std::vector<std::string>{"backend", "proxy"}));
}

// "slow" becomes ready only once "opener" has run (it waits on a FIFO that "opener" writes), and
// "opener" depends only on "fast": if dependents waited for the whole first wave, "slow" would
// never get ready and the start would time out.
TEST(ServerGroup, DependentStartsAsSoonAsItsOwnDependenciesAreReady) {
  const std::string fifo = ::testing::TempDir() + "group-fifo-" + std::to_string(::getpid());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string sample_child = PROCFIX_SAMPLE_CHILD;
  auto shell = [&](const std::string& name, std::vector<std::string> deps,
                   const std::string& script) {
    return GroupMember{.name = name,
                       .depends_on = std::move(deps),
                       .options = {.executable = "/bin/sh",
                                   .args = {"-c", script + "; exec " + sample_child},
                                   .ready_timeout = 30s}};
  };
  {
    ServerGroup group{{sample("fast"), shell("slow", {}, "read line < " + fifo),
                       shell("opener", {"fast"}, "echo go > " + fifo)}};
    EXPECT_LT(group.server("opener").timing().spawned, group.server("slow").timing().ready);
  }
  std::filesystem::remove(fifo);
}

TEST(ServerGroup, StopsInReverseDependencyOrder) {
  ServerGroup group{
      {sample("backend"), proxy("inner", "backend"), proxy("outer", "inner"), sample("other")}};
  const std::vector<procfix::StopReport> reports = group.stop();
  std::vector<std::string> order;
  for (const auto& r : reports) {
    order.push_back(r.server);
    EXPECT_TRUE(r.ok()) << r.describe();
  }
  // "outer" and "other" (nothing depends on them) first, together; then "inner"; then "backend".
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[2], "inner");
  EXPECT_EQ(order[3], "backend");
  EXPECT_LE(group.server("outer").timing().stopped, group.server("inner").timing().stop_began);
  EXPECT_LE(group.server("inner").timing().stopped, group.server("backend").timing().stop_began);
  EXPECT_EQ(group.stop().size(), 4u);  // idempotent
}

TEST(ServerGroup, FailingDependencyStopsTheOthersAndNamesItself) {
  const std::string token = "group-token-" + std::to_string(::getpid());
  int api_factory_calls = 0;
  try {
    ServerGroup group{{sample("cache", {}, {"--extra-json={\"token\":\"" + token + "\"}"}),
                       sample("db", {}, {"--stderr-lines=1", "--exit-before-ready=3"}),
                       {.name = "api", .depends_on = {"db"}, .factory = [&](const Dependencies&) {
                          ++api_factory_calls;
                          return ServerOptions{.executable = PROCFIX_SAMPLE_CHILD};
                        }}}};
    ADD_FAILURE() << "the group started";
  } catch (const procfix::StartError& e) {
    EXPECT_EQ(e.server(), "db");
    EXPECT_EQ(e.reason(), procfix::StartError::Reason::exited_before_ready);
    EXPECT_THAT(e.what(), HasSubstr("server 'db' (pid "));
    EXPECT_THAT(e.what(), HasSubstr("exited with status 3"));
    EXPECT_THAT(e.what(), HasSubstr("sample_child stderr line 1"));
    EXPECT_THAT(e.what(), HasSubstr("cache"));
    EXPECT_THAT(e.what(), HasSubstr("not started: api"));
  }
  EXPECT_EQ(api_factory_calls, 0);
  EXPECT_FALSE(alive_with(token));
}

TEST(ServerGroup, CycleIsRejectedBeforeAnythingSpawns) {
  int factory_calls = 0;
  auto counted = [&](const std::string& name, std::vector<std::string> deps) {
    return GroupMember{
        .name = name, .depends_on = std::move(deps), .factory = [&](const Dependencies&) {
          ++factory_calls;
          return ServerOptions{.executable = PROCFIX_SAMPLE_CHILD};
        }};
  };
  try {
    ServerGroup group{{counted("root", {}), counted("a", {"root", "b"}), counted("b", {"c"}),
                       counted("c", {"a"})}};
    ADD_FAILURE() << "the group started";
  } catch (const procfix::OptionsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("dependency cycle: a -> b -> c -> a"));
  }
  EXPECT_EQ(factory_calls, 0);
}

}  // namespace
