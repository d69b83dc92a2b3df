// docs/helpers.md's complete minimal server (compiled from the markdown): it reports readiness,
// serves, and drains on SIGTERM even with an idle client still connected.
#include <gtest/gtest.h>

#include <chrono>

#include "procfix/fixtures/server.hpp"
#include "support/line_client.hpp"

namespace {

using namespace std::chrono_literals;

TEST(HelpersDocExample, ServesAndStopsCleanlyWithAClientConnected) {
  procfix::Server server{{.executable = DOC_MINIMAL_SERVER, .ready_timeout = 30s}};
  procfix::testing::LineClient idle{server.endpoint()};
  EXPECT_EQ(idle.exchange("ping"), "pong");
  const procfix::StopReport report = server.stop();  // the idle connection must not hold it
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_FALSE(report.needed_kill);
}

}  // namespace
