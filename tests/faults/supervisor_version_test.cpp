// The lifeline handshake (fixtures/src/detail/handshake.hpp): a procfix-supervisor of another
// protocol version is refused, with a procfix::Error naming the server and both versions, before
// any request reaches it; and procfix-supervisor refuses a test process of another version.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

#include "detail/handshake.hpp"
#include "detail/supervisor_location.hpp"
#include "faults/fault_support.hpp"
#include "procfix/fixtures/errors.hpp"
#include "procfix/fixtures/server.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using procfix::testing::fault_child;
using procfix::testing::survivors_with;
using procfix::testing::unique_token;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace handshake = procfix::detail::handshake;

// `text` as a POSIX extended regular expression matching exactly it.
std::string literal(const std::string& text) {
  return std::regex_replace(text, std::regex{R"([.^$|()\[\]{}*+?\\])"}, R"(\$&)");
}

// In a fresh process (its first server starts its own supervisor): starts sample_child with
// PROCFIX_SUPERVISOR=`supervisor` and the environment `token`=1, and writes the StartError's
// message to stderr. Exits 0 if the start failed with a StartError of reason spawn_failed.
void start_with_supervisor(const std::string& supervisor, const std::string& hello,
                           const std::string& token) {
  ::alarm(30);  // a hang ends this process, not the test run
  ::setenv("PROCFIX_SUPERVISOR", supervisor.c_str(), 1);
  if (!hello.empty()) ::setenv("PROCFIX_FAKE_SUPERVISOR_HELLO", hello.c_str(), 1);
  ::setenv(token.c_str(), "1", 1);  // in the supervisor's environment: found if it survived
  try {
    procfix::Server server{{.executable = PROCFIX_SAMPLE_CHILD, .ready_timeout = 10s}};
  } catch (const procfix::StartError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::fflush(stderr);
    _exit(e.reason() == procfix::StartError::Reason::spawn_failed ? 0 : 1);
  }
  _exit(2);
}

TEST(FaultSupervisorVersion, SupervisorOfAnotherProtocolIsRefusedNamingBothVersions) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string token = unique_token("procfix_version_test");
  const std::string ours = handshake::describe(handshake::kProtocol, handshake::procfix_version());
  const std::string theirs = handshake::describe(handshake::kProtocol + 1, "9.9.9");
  EXPECT_EXIT(
      start_with_supervisor(
          fault_child("fake_supervisor"),
          "procfix-supervisor " + std::to_string(handshake::kProtocol + 1) + " 9.9.9", token),
      ::testing::ExitedWithCode(0),
      literal("server 'sample_child' failed to start: procfix-supervisor " +
              fault_child("fake_supervisor")) +
          " \\(pid [0-9]+\\) " + literal("speaks " + theirs) + "; " +
          literal("this procfix fixtures library speaks " + ours) +
          " and needs the procfix-supervisor of its own version");
  EXPECT_THAT(survivors_with(token), IsEmpty());
}

TEST(FaultSupervisorVersion, ProgramThatIsNoSupervisorIsRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string token = unique_token("procfix_version_test");
  EXPECT_EXIT(start_with_supervisor("/bin/true", "", token), ::testing::ExitedWithCode(0),
              "server 'sample_child' failed to start: procfix-supervisor /bin/true \\(pid "
              "[0-9]+\\) ended before it sent its hello \\(exited with status 0\\); this procfix "
              "fixtures library speaks lifeline protocol");
}

TEST(FaultSupervisorVersion, SupervisorRefusesTestProcessOfAnotherProtocol) {
  int lifeline[2];
  int diagnostics[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lifeline), 0);
  ASSERT_EQ(::pipe2(diagnostics, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, lifeline[1], 3);
  posix_spawn_file_actions_adddup2(&actions, diagnostics[1], 2);
  const std::string path = procfix::detail::supervisor_path();
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(lifeline[1]);
  ::close(diagnostics[1]);

  // Its hello comes first, unasked; ours, of another protocol, makes it exit.
  char hello[256];
  const ssize_t n = ::recv(lifeline[0], hello, sizeof hello, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(hello, static_cast<std::size_t>(n)),
            handshake::encode(handshake::kSupervisorRole));
  const std::string wrong =
      "procfix-fixtures " + std::to_string(handshake::kProtocol + 1) + " 9.9.9";
  ASSERT_EQ(::send(lifeline[0], wrong.data(), wrong.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(wrong.size()));
  std::string said;
  char chunk[512];
  for (ssize_t got; (got = ::read(diagnostics[0], chunk, sizeof chunk)) > 0;) {
    said.append(chunk, static_cast<std::size_t>(got));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_THAT(said,
              HasSubstr("procfix-supervisor: refusing the test process: it speaks " +
                        handshake::describe(handshake::kProtocol + 1, "9.9.9") +
                        ", this procfix-supervisor " +
                        handshake::describe(handshake::kProtocol, handshake::procfix_version())));
  ::close(lifeline[0]);
  ::close(diagnostics[0]);
}

}  // namespace
