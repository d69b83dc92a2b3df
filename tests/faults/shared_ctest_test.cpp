// Issue 12's acceptance, run for real: a generated CMake project declares the shared demo server
// exactly as a user would (procfix_add_shared_server(... FROM_TEST_BINARY ...) from
// cmake/ProcfixSharedServer.cmake, the 20 tests of tests/shared/shared_demo_tests, the
// seen_reset/one_start pair of tests/shared), and a real ctest runs it. Each demo test appends
// the pid of the server it used to a file; the run must pass and name exactly one pid.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "bounded_run.hpp"

namespace {

using procfix::testing::BoundedRun;
using procfix::testing::run_bounded;
using ::testing::HasSubstr;

class DemoProject {
 public:
  DemoProject() {
    char pattern[] = "/tmp/procfix-shared-ctest-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    std::filesystem::create_directories(dir_ + "/src");
    std::ofstream file{dir_ + "/src/CMakeLists.txt"};
    file << R"(cmake_minimum_required(VERSION 3.25)
project(procfix_shared_acceptance NONE)
enable_testing()
add_executable(procfix::procfix-run IMPORTED)
set_target_properties(procfix::procfix-run PROPERTIES IMPORTED_LOCATION ")"
         << PROCFIX_RUN << R"(")
add_executable(shared_demo_tests IMPORTED)
set_target_properties(shared_demo_tests PROPERTIES IMPORTED_LOCATION ")"
         << PROCFIX_SHARED_DEMO_TESTS << R"(")
include(")"
         << PROCFIX_SOURCE_DIR << R"(/cmake/ProcfixSharedServer.cmake")
procfix_add_shared_server(NAME shared_demo FROM_TEST_BINARY shared_demo_tests
                          MAX_LIFETIME 120000 LABELS shared-server-demo)
set(seen "${PROCFIX_SHARED_SHARED_DEMO_STATE_FILE}.seen")
add_test(NAME shared_demo.seen_reset COMMAND ${CMAKE_COMMAND} -E rm -f ${seen})
add_test(NAME shared_demo.one_start COMMAND ${CMAKE_COMMAND} -DSEEN=${seen}
         -P ")"
         << PROCFIX_SOURCE_DIR << R"(/tests/shared/check_one_start.cmake")
set_tests_properties(shared_demo.seen_reset PROPERTIES
  FIXTURES_SETUP shared_demo LABELS shared-server-demo)
set_tests_properties(shared_demo.one_start PROPERTIES
  FIXTURES_CLEANUP shared_demo LABELS shared-server-demo)
foreach(n 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20)
  add_test(NAME shared.SharedDemo.Test${n}
           COMMAND shared_demo_tests --gtest_filter=SharedDemo.Test${n})
  set_tests_properties(shared.SharedDemo.Test${n} PROPERTIES
    ${PROCFIX_SHARED_SHARED_DEMO_PROPERTIES} LABELS shared-server-demo TIMEOUT 60)
endforeach()
)";
    file.close();
    configured_ = run_bounded({"cmake", "-S", dir_ + "/src", "-B", build()});
  }
  ~DemoProject() {
    // Whatever a failed run left: stop it (a no-op after a clean run), then remove everything.
    (void)run_bounded({PROCFIX_RUN, "--stop", "--state=" + state_file()}, 60'000);
    std::filesystem::remove_all(dir_);
  }
  const BoundedRun& configured() const { return configured_; }
  std::string build() const { return dir_ + "/build"; }
  std::string state_file() const { return build() + "/procfix-shared/shared_demo.json"; }

  // `ctest --test-dir <build> ARGS...`
  BoundedRun ctest(std::vector<std::string> args) const {
    args.insert(args.begin(), {"ctest", "--test-dir", build(), "--output-on-failure"});
    return run_bounded(std::move(args), 120'000);
  }

  // The server pids the demo tests recorded, one line per test run.
  std::vector<std::string> seen() const {
    std::vector<std::string> lines;
    std::ifstream file{state_file() + ".seen"};
    for (std::string line; std::getline(file, line);) lines.push_back(line);
    return lines;
  }

 private:
  std::string dir_;
  BoundedRun configured_;
};

std::size_t distinct(const std::vector<std::string>& lines) {
  return std::set<std::string>{lines.begin(), lines.end()}.size();
}

// `ctest -R <one demo test>`: CTest adds the setup and cleanup tests by itself; the one test
// passes against the one server the setup started, which the cleanup stops cleanly.
TEST(FaultShared, CtestDashROnOneDemoTestPassesWithOneServer) {
  DemoProject project;
  ASSERT_EQ(project.configured().status, 0) << project.configured().err;
  const BoundedRun run = project.ctest({"-R", "^shared\\.SharedDemo\\.Test07$"});
  ASSERT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("shared_demo.setup"));
  EXPECT_THAT(run.out, HasSubstr("shared_demo.cleanup"));
  EXPECT_THAT(run.out, HasSubstr("100% tests passed"));
  const auto seen = project.seen();
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(distinct(seen), 1u);
}

// `ctest --repeat until-fail:3 -L shared-server-demo -j2`: every test runs three times (the setup
// too, which reuses the kept server), 60 demo test runs, all against one server start.
TEST(FaultShared, RepeatUntilFail3OfTheDemoLabelPassesWithOneServer) {
  DemoProject project;
  ASSERT_EQ(project.configured().status, 0) << project.configured().err;
  const BoundedRun run =
      project.ctest({"--repeat", "until-fail:3", "-L", "shared-server-demo", "-j2"});
  ASSERT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("100% tests passed, 0 tests failed out of 24"));
  const auto seen = project.seen();
  EXPECT_EQ(seen.size(), 60u);
  EXPECT_EQ(distinct(seen), 1u) << "more than one server start in the run";
  // The run ended with the whole teardown: the state says stopped, not running.
  std::ifstream state{project.state_file()};
  const std::string text{std::istreambuf_iterator<char>{state}, {}};
  EXPECT_THAT(text, HasSubstr("\"state\":\"stopped\""));
}

// A generated project with `body` after the procfix-run import and the module's include;
// configured at once. Removed at the end.
class ScratchProject {
 public:
  explicit ScratchProject(const std::string& body) {
    char pattern[] = "/tmp/procfix-shared-scratch-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    std::filesystem::create_directories(dir_ + "/src");
    std::ofstream file{dir_ + "/src/CMakeLists.txt"};
    file << "cmake_minimum_required(VERSION 3.25)\nproject(scratch NONE)\nenable_testing()\n"
         << "add_executable(procfix::procfix-run IMPORTED)\n"
         << "set_target_properties(procfix::procfix-run PROPERTIES IMPORTED_LOCATION \""
         << PROCFIX_RUN << "\")\ninclude(\"" << PROCFIX_SOURCE_DIR
         << "/cmake/ProcfixSharedServer.cmake\")\n"
         << body;
    file.close();
    configured_ = run_bounded({"cmake", "-S", dir_ + "/src", "-B", dir_ + "/build"});
  }
  ~ScratchProject() { std::filesystem::remove_all(dir_); }
  const BoundedRun& configured() const { return configured_; }
  std::string build() const { return dir_ + "/build"; }

 private:
  std::string dir_;
  BoundedRun configured_;
};

// Found by an outside-tester pass: the generated start script put every word in single quotes
// as it was, so an argument holding a quote broke the script. Now each word is quoted as a shell
// word; the server gets its argument unchanged, and `eval "$(sh X.sh start)"` works.
TEST(FaultShared, GeneratedScriptPassesAnArgumentWithAQuoteUnchanged) {
  ScratchProject project{R"(procfix_add_shared_server(NAME quoted MAX_LIFETIME 120000 COMMAND
  python3 -c [=[
import os, signal, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
os.write(int(os.environ["PROCFIX_READY_FD"]), b'{"address":"127.0.0.1:1","it\'s":"$HOME"}\n')
signal.pause()
]=])
)"};
  ASSERT_EQ(project.configured().status, 0) << project.configured().err;
  const std::string script = project.build() + "/procfix-shared/quoted.sh";
  const BoundedRun start = run_bounded(
      {"sh", "-c", "eval \"$(sh \"$0\" start)\" && cat \"$PROCFIX_SHARED_QUOTED\"", script});
  const BoundedRun stop = run_bounded({"sh", script, "stop"});
  ASSERT_EQ(start.status, 0) << start.out << start.err;
  EXPECT_THAT(start.out, HasSubstr(R"("it's":"$HOME")")) << start.out;
  EXPECT_EQ(stop.status, 0) << stop.out << stop.err;
}

// Found by an outside-tester pass: NAME my-db and NAME my_db both give PROCFIX_SHARED_MY_DB, and
// the second one's tests silently found the first one's server. Now the configure fails.
TEST(FaultShared, TwoNamesGivingOneVariableFailTheConfigure) {
  ScratchProject project{R"(procfix_add_shared_server(NAME my-db COMMAND sleep 1)
procfix_add_shared_server(NAME my_db COMMAND sleep 1)
)"};
  EXPECT_NE(project.configured().status, 0);
  // CMake wraps the message: look for parts that fit on a line.
  EXPECT_THAT(project.configured().err, HasSubstr("procfix_add_shared_server(my_db): its variable"))
      << project.configured().err;
  EXPECT_THAT(project.configured().err, HasSubstr("PROCFIX_SHARED_MY_DB"));
  EXPECT_THAT(project.configured().err, HasSubstr("shared server 'my-db'"));
}

}  // namespace
