// Issue 12's demo: 20 tiny tests that each need one real PostgreSQL. Under the label
// shared-server-demo one PostgreSQL (initdb included) serves the whole ctest run; under
// shared-server-baseline each test process starts its own (procfix::add_global_server with the
// same options; PROCFIX_SHARED_PG_DEMO unset). Each test isolates itself with a table named
// after it. Needs root and the user procfix-test (tools/setup); skipped otherwise.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "procfix/fixtures/environment.hpp"
#include "support/command.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* kTestUser = "procfix-test";
procfix::ServerEnvironment* postgres = nullptr;
bool can_run = false;

std::string table_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string{"t_"} + info->name();
}

// Records which server this test used: the shared one in <state file>.seen (pg_demo.one_start);
// its own, under the baseline label, in $PROCFIX_DEMO_SEEN (tools/bench counts the starts).
void record_server() {
  const char* baseline = std::getenv("PROCFIX_DEMO_SEEN");
  const std::string seen = !postgres->shared_state_file().empty()
                               ? postgres->shared_state_file() + ".seen"
                           : baseline != nullptr ? baseline
                                                 : "";
  if (seen.empty()) return;
  std::ofstream{seen, std::ios::app} << std::to_string(postgres->pid()) + "\n" << std::flush;
}

void exercise() {
  if (!can_run) GTEST_SKIP() << "needs root and the user " << kTestUser;
  record_server();
  const std::string table = table_name();
  const auto result = procfix::testing::run_command(
      {"psql", "-h", postgres->endpoint().address(), "-U", "postgres", "-d", "postgres", "-tAq",
       "-v", "ON_ERROR_STOP=1", "-c",
       "SET client_min_messages TO warning; DROP TABLE IF EXISTS " + table + "; CREATE TABLE " +
           table + " (v text); INSERT INTO " + table + " VALUES ('" + table + "'); SELECT v FROM " +
           table + "; DROP TABLE " + table + ";"});
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(result.output, table + "\n");
}

}  // namespace

#define PROCFIX_PG_TEST(n)       \
  TEST(PostgresDemo, Query##n) { \
    exercise();                  \
  }
PROCFIX_PG_TEST(01)
PROCFIX_PG_TEST(02)
PROCFIX_PG_TEST(03)
PROCFIX_PG_TEST(04)
PROCFIX_PG_TEST(05)
PROCFIX_PG_TEST(06)
PROCFIX_PG_TEST(07)
PROCFIX_PG_TEST(08)
PROCFIX_PG_TEST(09)
PROCFIX_PG_TEST(10)
PROCFIX_PG_TEST(11)
PROCFIX_PG_TEST(12)
PROCFIX_PG_TEST(13)
PROCFIX_PG_TEST(14)
PROCFIX_PG_TEST(15)
PROCFIX_PG_TEST(16)
PROCFIX_PG_TEST(17)
PROCFIX_PG_TEST(18)
PROCFIX_PG_TEST(19)
PROCFIX_PG_TEST(20)

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  can_run = ::geteuid() == 0 && ::getpwnam(kTestUser) != nullptr;
  // The per-process server's directory (the shared one's is given in CMake).
  const std::string dir = "/tmp/procfix-pg-demo-" + std::to_string(::getpid());
  if (can_run) {
    postgres = procfix::add_global_server({
        .executable = PROCFIX_PG_SERVER,
        .args = {dir},
        .name = "pg_demo",
        .ready_timeout = 60s,
        .stop_signal = SIGINT,  // "fast shutdown"
        .stop_grace = 30s,
        .readiness = procfix::Readiness::notify_socket(dir),
        .user = kTestUser,
    });
  }
  const int status = RUN_ALL_TESTS();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return status;
}
