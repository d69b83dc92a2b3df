// The fault matrix for what procfix writes about a server: error messages, StopReport::describe()
// and the JUnit properties, fed with bytes and names that would cut, corrupt or overwrite them.
// Found by an outside-tester pass through the public API.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "faults/fault_support.hpp"
#include "procfix/fixtures/group.hpp"
#include "procfix/fixtures/server.hpp"

namespace {

using procfix::Readiness;
using procfix::Server;
using procfix::StartError;
using ::testing::HasSubstr;
using ::testing::Not;

// A NUL byte in the stderr tail ended what() (a C string) and so gtest's failure message there:
// the last line, usually the reason, was lost.
TEST(FaultReportText, NulInStderrDoesNotCutAFailedStartsMessage) {
  try {
    Server server{
        {.executable = "/bin/sh",
         .args = {"-c", "printf 'first\\nsecond \\000 line\\nthe real reason\\n' >&2; exit 3"}}};
    ADD_FAILURE() << "the server started";
  } catch (const StartError& e) {
    const std::string as_c_string{e.what()};  // what a test framework prints
    EXPECT_THAT(as_c_string, HasSubstr("second \\x00 line\nthe real reason"));
    EXPECT_EQ(e.stderr_tail(), std::string("first\nsecond \0 line\nthe real reason", 35))
        << "stderr_tail() keeps the bytes";
  }
}

TEST(FaultReportText, NulInStderrDoesNotCutAStopReport) {
  Server server{{.executable = "/bin/sh",
                 .args = {"-c",
                          "printf 'a \\000 b\\nlast words\\n' >&2; echo '{}' >&$PROCFIX_READY_FD; "
                          "exec sleep 0.05"},
                 .readiness = Readiness::ready_fd({.require_address = false})}};
  const procfix::StopReport report = server.stop();
  ASSERT_FALSE(report.ok());
  const std::string as_c_string{report.describe().c_str()};
  EXPECT_THAT(as_c_string, HasSubstr("a \\x00 b\nlast words"));
}

// U+FFFE and U+FFFF are valid UTF-8 but not allowed in XML: gtest's report passes them through.
TEST(FaultReportText, CharactersXmlForbidsAreReplacedInAFailedStartsMessage) {
  try {
    Server server{
        {.executable = "/bin/sh",
         .args = {"-c", "printf 'x\\357\\277\\276y\\357\\277\\277z\\001\\n' >&2; exit 3"}}};
    ADD_FAILURE() << "the server started";
  } catch (const StartError& e) {
    EXPECT_THAT(e.what(), HasSubstr("x\xEF\xBF\xBDy\xEF\xBF\xBDz\\x01"));
    EXPECT_THAT(e.what(), Not(HasSubstr("\xEF\xBF\xBE")));
  }
}

// A server whose executable's file name is not valid UTF-8 got that name raw: in messages, in
// the log file names and in the JUnit report, which no XML parser then read.
TEST(FaultReportText, ExecutableNameThatIsNotValidUtf8GivesAValidName) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("procfix-name-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path link = dir / "caf\xE9.sh";
  std::filesystem::create_symlink(PROCFIX_SAMPLE_CHILD, link);
  {
    Server server{{.executable = link}};
    EXPECT_EQ(server.name(), "caf\xEF\xBF\xBD.sh");
    EXPECT_TRUE(server.stop().ok());
  }
  // Each byte of U+FFFD and the dot become "_" in the key.
  EXPECT_EQ(procfix::testing::recorded_property("procfix.caf____sh.name"), "caf\xEF\xBF\xBD.sh");
  std::filesystem::remove_all(dir);
}

// Two servers of one executable in one test both became "procfix.<name>.*": the second overwrote
// the first's record, so a server that needed SIGKILL vanished from the report behind a clean one.
TEST(FaultReportText, TwoServersWithTheSameNameInATestAreBothRecorded) {
  const procfix::ServerOptions options{.executable = PROCFIX_SAMPLE_CHILD};
  Server first{options};
  Server second{options};
  const pid_t first_pid = first.pid();
  const pid_t second_pid = second.pid();
  EXPECT_TRUE(first.stop().ok());
  EXPECT_TRUE(second.stop().ok());
  EXPECT_EQ(procfix::testing::recorded_property("procfix.sample_child.pid"),
            std::to_string(first_pid));
  EXPECT_EQ(procfix::testing::recorded_property("procfix.sample_child_2.pid"),
            std::to_string(second_pid));
  EXPECT_EQ(procfix::testing::recorded_property("procfix.sample_child_2.name"), "sample_child");
}

// Found by an outside-tester pass: a misbehaving server stopped by its handle's destructor (and
// a group's, and stop_and_expect_clean()) was reported at the library's own source line
// ("group.cpp:234: Failure"); now at the running test, as the scopes do.
TEST(FaultReportText, DestructorFailuresAreReportedAtTheTestNotInTheLibrary) {
  // Ready, then ignores the stop signal: killed after a short grace, which is a failed stop.
  const auto ignores_the_stop = [] {
    using namespace std::chrono_literals;
    return procfix::ServerOptions{
        .executable = "/bin/sh",
        .args = {"-c", "trap '' TERM; echo '{}' >&$PROCFIX_READY_FD; exec sleep 1000"},
        .ready_timeout = 60s,
        .stop_grace = 50ms,
        .readiness = Readiness::ready_fd({.require_address = false})};
  };
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter{
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures};
    { Server server{ignores_the_stop()}; }
    { procfix::ServerGroup group{{{.name = "only", .options = ignores_the_stop()}}}; }
    Server(ignores_the_stop()).stop_and_expect_clean();
  }
  ASSERT_EQ(failures.size(), 3);
  for (int i = 0; i < failures.size(); ++i) {
    EXPECT_STREQ(failures.GetTestPartResult(i).file_name(), __FILE__)
        << failures.GetTestPartResult(i).message();
  }
}

// Found by tools/bench: every server of one name got its own `<name>_K` without bound, and
// finding K scanned every property, so a test (or a run outside tests) with many servers of one
// name grew its report and slowed each stop. At most 16 are recorded per name and result.
TEST(FaultReportText, ManyServersOfOneNameKeepTheReportBounded) {
  for (int i = 0; i < 20; ++i) {
    Server server{{.executable = "/bin/sh",
                   .args = {"-c", "echo '{}' >&$PROCFIX_READY_FD; exec sleep 1000"},
                   .name = "many",
                   .expected_exit = procfix::ExpectedExit::signal(SIGTERM),
                   .readiness = Readiness::ready_fd({.require_address = false})}};
    EXPECT_TRUE(server.stop().ok());
  }
  EXPECT_EQ(procfix::testing::recorded_property("procfix.many.name"), "many");
  EXPECT_EQ(procfix::testing::recorded_property("procfix.many_16.name"), "many");
  EXPECT_EQ(procfix::testing::recorded_property("procfix.many_17.name"), "(missing)");
}

}  // namespace
