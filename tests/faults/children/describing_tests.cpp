// A test binary as `procfix-run --options-from=BINARY:NAME` runs it (FaultOptionsFrom.*): its
// main() defines two global servers, "first" (every field set away from its default) and
// "second"; any other name asked for through PROCFIX_DESCRIBE_SERVER picks a misbehaviour:
//   junk          prints a line that is not JSON, exits 0
//   nothing       prints nothing, exits 0
//   crash         says so on stderr, aborts (SIGABRT)
//   exit7         says so on stderr, exits 7
//   hang-TOKEN    blocks forever
//   flood         prints 2 MiB on stdout, exits 0
//   unknown_field prints options JSON with a field no procfix knows
//   no_servers    calls add_global_server() for no server, so RUN_ALL_TESTS() runs
//   orphan-TOKEN  forks a child that keeps stdout open and blocks, then answers as a real
//                 server named orphan-TOKEN (TOKEN is in the environment of both: found by
//                 processes_with)
// Run without PROCFIX_DESCRIBE_SERVER it is no use. Its only test aborts: if a test ever runs
// while it is asked for options, the run fails with SIGABRT.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "procfix/fixtures/environment.hpp"

using namespace std::chrono_literals;

TEST(Describing, MustNeverRun) {
  std::fputs("describing_tests: a test ran although options were asked for\n", stderr);
  std::abort();
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* asked_for = std::getenv("PROCFIX_DESCRIBE_SERVER");
  const std::string asked = asked_for == nullptr ? "" : asked_for;
  if (asked == "junk") {
    std::puts("Running main() from a test binary that knows nothing of procfix");
    return 0;
  }
  if (asked == "nothing") return 0;
  if (asked == "crash") {
    std::fputs("describing_tests: crashing on purpose\n", stderr);
    std::abort();
  }
  if (asked == "exit7") {
    std::fputs("describing_tests: exiting with 7 on purpose\n", stderr);
    return 7;
  }
  if (asked.rfind("hang-", 0) == 0) {
    for (;;) ::pause();
  }
  if (asked == "flood") {
    const std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 32; ++i) std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    return 0;
  }
  if (asked == "unknown_field") {
    std::puts(R"({"procfix_server_options": 1, "executable": "/bin/true", "colour": "red"})");
    return 0;
  }
  if (asked.rfind("orphan-", 0) == 0) {
    if (::fork() == 0) {
      for (;;) ::pause();  // holds stdout and stderr open
    }
    procfix::add_global_server({.executable = PROCFIX_SAMPLE_CHILD, .name = asked});
  }
  if (asked != "no_servers") {
    procfix::add_global_server({
        .executable = PROCFIX_SAMPLE_CHILD,
        .args = {"--report-env=PROCFIX_FROM_CPP"},
        .name = "first",
        .env = {{"PROCFIX_FROM_CPP", "defined in C++"}},
        .working_directory = "/tmp",
        .ready_timeout = 7s,
        .stop_signal = SIGINT,
        .stop_grace = 3s,
        .expected_exit = procfix::ExpectedExit::status(0),
        .readiness = procfix::Readiness::ready_fd({.fd = 5, .require_address = true}),
        .output_tail_bytes = 1234,
    });
    procfix::add_global_server({.executable = PROCFIX_SAMPLE_CHILD, .name = "second"});
  }
  return RUN_ALL_TESTS();
}
