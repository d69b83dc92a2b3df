// The fault matrix: options, starts and stops driven into their corners through the public API.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faults/fault_support.hpp"
#include "procfix/fixtures/server.hpp"
#include "support/sample_child.hpp"

namespace {

using namespace std::chrono_literals;
using procfix::Readiness;
using procfix::Server;
using procfix::ServerOptions;
using procfix::StartError;
using procfix::testing::fault_child;
using ::testing::HasSubstr;

// Issue 13 item 20: a server that announces readiness 5 ms before it installs its SIGTERM
// handler, stopped at once, is stopped cleanly: the stop waits (bounded) until the signal is
// handled instead of killing it by the default action.
TEST(FaultStop, ServerReadyBeforeItsHandlerIsStoppedCleanlyAtOnce) {
  for (int i = 0; i < 20; ++i) {
    Server server{
        {.executable = fault_child("late_handler"), .ready_timeout = 60s, .stop_grace = 10s}};
    const procfix::StopReport report = server.stop();
    EXPECT_TRUE(report.ok()) << "stop " << i << ": " << report.describe();
  }
}

// Issue 16 item 7: the stop reads the server's signal masks through /proc/<pid>/stat opened while
// the server started. Code that closes that fd behind procfix's back and reuses its number (here:
// for a pipe) must not be read as the server's masks (the stop would then not wait for the late
// handler) nor closed by procfix (it is someone else's fd now).
TEST(FaultStop, StatFdReusedBehindProcfixIsNeitherReadNorClosed) {
  Server server{
      {.executable = fault_child("late_handler"), .ready_timeout = 60s, .stop_grace = 10s}};
  const std::string stat = "/proc/" + std::to_string(server.pid()) + "/stat";
  int reused = -1;
  for (const auto& entry : std::filesystem::directory_iterator{"/proc/self/fd"}) {
    std::error_code error;
    if (std::filesystem::read_symlink(entry.path(), error) == stat) {
      reused = std::stoi(entry.path().filename().string());
    }
  }
  ASSERT_GE(reused, 3) << "no fd of this process is open on " << stat;
  int ends[2];
  ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
  ASSERT_EQ(::dup3(ends[0], reused, O_CLOEXEC), reused);  // closes the stat fd, reuses its number
  ::close(ends[0]);
  struct stat before {};
  ASSERT_EQ(::fstat(reused, &before), 0);
  const procfix::StopReport report = server.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
  {
    const Server gone = std::move(server);  // the server's state, with the guard, goes here
  }
  struct stat after {};
  EXPECT_EQ(::fstat(reused, &after), 0) << "procfix closed fd " << reused << ", not its own";
  EXPECT_EQ(after.st_ino, before.st_ino);
  ::close(reused);
  ::close(ends[1]);
}

// Issue 13 item 20: the same for a socket-activated server, "ready" at exec.
TEST(FaultStop, SocketActivatedServerStoppedAtOnceIsStoppedCleanly) {
  for (int i = 0; i < 20; ++i) {
    Server server{procfix::testing::sample_child({"--listen-fds"}, Readiness::socket_activation())};
    const procfix::StopReport report = server.stop();
    EXPECT_TRUE(report.ok()) << "stop " << i << ": " << report.describe();
  }
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (procfix::testing::unique_token("pa") + "-" + name))
      .string();
}

std::string file_text(const std::string& path) {
  std::string text;
  if (FILE* file = std::fopen(path.c_str(), "r")) {
    char chunk[256];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, file)) > 0;) text.append(chunk, n);
    std::fclose(file);
  }
  return text;
}

// Outside-tester pass: socket activation on a unix path where a file already is (another
// server's socket, a data file): the failed bind() was reported, and then the fixture removed
// the file it had not created.
TEST(FaultStart, SocketActivationOnAnExistingPathFailsAndLeavesTheFile) {
  const std::string path = temp_path("data");
  std::FILE* file = std::fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs("precious", file);
  std::fclose(file);
  const StartError error = procfix::testing::start_failure(
      procfix::testing::sample_child({"--listen-fds"}, Readiness::socket_activation(path)));
  EXPECT_THAT(error.what(), HasSubstr("a file already exists at that path")) << error.what();
  EXPECT_EQ(file_text(path), "precious");
  std::filesystem::remove(path);
}

// Outside-tester pass: the socket file is removed at the stop only while it is still the one the
// fixture bound; a file put in its place meanwhile stays.
TEST(FaultStop, SocketActivationPathReplacedWhileRunningIsNotRemovedAtTheStop) {
  const std::string path = temp_path("sock");
  {
    Server server{
        procfix::testing::sample_child({"--listen-fds"}, Readiness::socket_activation(path))};
    ASSERT_TRUE(std::filesystem::is_socket(path));
    std::filesystem::remove(path);
    std::FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs("replaced", file);
    std::fclose(file);
    EXPECT_TRUE(server.stop().ok());
  }
  EXPECT_EQ(file_text(path), "replaced");
  std::filesystem::remove(path);
}

// Outside-tester pass: the same after the server has closed the socket, so that its inode is
// freed, and a new file gets it (ext4 reuses the number at once): device and inode matched and
// the new file was removed. The type and the birth time are compared too now.
TEST(FaultStop, SocketActivationPathReplacedAfterTheSocketWasFreedIsNotRemoved) {
  const std::string path = temp_path("sock");
  const std::string closed = temp_path("closed");
  ASSERT_EQ(::mkfifo(closed.c_str(), 0600), 0);
  {
    Server server{{.executable = "/bin/sh",
                   .args = {"-c", "exec 3>&-; echo closed > \"$0\"; exec sleep 1000", closed},
                   .ready_timeout = 60s,
                   .readiness = Readiness::socket_activation(path)}};
    std::filesystem::remove(path);
    std::FILE* fifo = std::fopen(closed.c_str(), "r");  // until the server has closed fd 3
    ASSERT_NE(fifo, nullptr);
    char word[16] = {};
    EXPECT_NE(std::fgets(word, sizeof word, fifo), nullptr);
    std::fclose(fifo);
    std::FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs("replaced", file);
    std::fclose(file);
    (void)server.stop();  // killed by SIGTERM (sleep): not what this test is about
  }
  EXPECT_EQ(file_text(path), "replaced");
  std::filesystem::remove(path);
  std::filesystem::remove(closed);
}

// The socket file the fixture created is removed at the stop.
TEST(FaultStop, SocketActivationPathIsRemovedAtTheStop) {
  const std::string path = temp_path("sock");
  {
    Server server{
        procfix::testing::sample_child({"--listen-fds"}, Readiness::socket_activation(path))};
    ASSERT_TRUE(std::filesystem::is_socket(path));
    EXPECT_TRUE(server.stop().ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

// Outside-tester pass: `env` naming the variable the readiness mode sets replaced it, so the
// server looked for its readiness channel in the wrong place and the start timed out blaming it.
TEST(FaultStart, EnvReplacingTheReadinessModesVariableIsAnOptionsError) {
  const std::pair<Readiness, std::string> cases[] = {
      {Readiness::ready_fd(), "PROCFIX_READY_FD"},
      {Readiness::notify_socket(), "NOTIFY_SOCKET"},
      {Readiness::socket_activation(), "LISTEN_FDS"},
      {Readiness::socket_activation(), "LISTEN_PID"}};
  for (const auto& [readiness, variable] : cases) {
    ServerOptions options = procfix::testing::sample_child({}, readiness);
    options.env[variable] = "5";
    try {
      Server server{std::move(options)};
      ADD_FAILURE() << variable << ": the start did not fail";
    } catch (const procfix::OptionsError& e) {
      EXPECT_EQ(e.field(), ".env") << e.what();
      EXPECT_THAT(e.what(), HasSubstr("[\"" + variable + "\"] would replace")) << e.what();
    }
  }
}

// Outside-tester pass: options.hpp says what procfix sets for a readiness mode is set whatever
// `unset_env` says, but NOTIFY_SOCKET in `unset_env` left the server without it, and the start
// timed out.
TEST(FaultStart, UnsetEnvNamingTheReadinessModesVariableStillGetsIt) {
  ServerOptions options = procfix::testing::sample_child({}, Readiness::notify_socket());
  options.unset_env = {"NOTIFY_SOCKET", "PROCFIX_READY_FD", "LISTEN_FDS"};
  Server server{std::move(options)};
  EXPECT_TRUE(server.stop().ok());
}

// Outside-tester pass: with require_address = false, {"address":7} was taken and the number
// dropped, so the test got an empty endpoint from a server that meant to give one.
TEST(FaultStart, AddressThatIsNotAStringIsMalformedEvenWhenNotRequired) {
  const StartError error = procfix::testing::start_failure(
      {.executable = "/bin/sh",
       .args = {"-c", "echo '{\"address\":7}' >&$PROCFIX_READY_FD; exec sleep 1000"},
       .ready_timeout = 60s,
       .readiness = Readiness::ready_fd({.require_address = false})});
  EXPECT_EQ(error.reason(), StartError::Reason::malformed_message) << error.what();
  EXPECT_THAT(error.what(), HasSubstr("whose \"address\" is not a string")) << error.what();
}

// Found while adding the case below: Readiness::output_line({.pattern = ..., .address = ...})
// compiled as std::string's (first, last) constructor on the two literals, and read memory
// between them as the pattern (g++ 12 took the designated initializers for a std::string).
TEST(FaultStart, DesignatedOptionsReachOutputLineAndSocketActivation) {
  const Readiness line = Readiness::output_line({.pattern = "ready", .address = "h:1"});
  const auto& output = std::get<Readiness::OutputLine>(line.parameters());
  EXPECT_EQ(output.pattern, "ready");
  EXPECT_EQ(output.address, "h:1");
  const Readiness activation =
      Readiness::socket_activation({.bind_address = "[::1]:0", .name = "web"});
  const auto& socket = std::get<Readiness::SocketActivation>(activation.parameters());
  EXPECT_EQ(socket.bind_address, "[::1]:0");
  EXPECT_EQ(socket.name, "web");
}

// Outside-tester pass: readiness options that can never give an endpoint were taken, the server
// was spawned, and the start failed after it (or timed out, for a listen address no listen()
// can have). Each is now an OptionsError naming the field, before anything is spawned.
TEST(FaultStart, ReadinessOptionsThatCanNeverWorkAreRejectedBeforeTheSpawn) {
  const std::string token = procfix::testing::unique_token();
  const std::pair<Readiness, std::string> cases[] = {
      {Readiness::output_line({.pattern = "ready", .address = "garbage"}),
       ".readiness output_line address"},
      {Readiness::notify_socket({.address = "127.0.0.1:0"}), ".readiness notify_socket address"},
      {Readiness::listen({.address = "localhost:8080"}), ".readiness listen address"},
      {Readiness::listen({.address = "127.0.0.1"}), ".readiness listen address"},
      {Readiness::socket_activation("nowhere"), ".readiness socket_activation bind_address"},
      {Readiness::socket_activation("127.0.0.1:0", std::string{"a\0b", 3}),
       ".readiness socket_activation name"},
      {Readiness::socket_activation("127.0.0.1:0", "a:b"), ".readiness socket_activation name"}};
  for (const auto& [readiness, field] : cases) {
    try {
      Server server{procfix::testing::sample_child({token}, readiness)};
      ADD_FAILURE() << field << ": the start did not fail";
    } catch (const procfix::OptionsError& e) {
      EXPECT_EQ(e.field(), field) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << field << ": " << e.what();
    }
  }
  EXPECT_TRUE(procfix::testing::survivors_with(token).empty());
}

// Issue 13 item 20: when death by the stop signal is the expected ending there is nothing to wait
// for: a server without a handler is stopped by the signal at once.
TEST(FaultStop, NoWaitForAHandlerWhenDeathByTheSignalIsExpected) {
  Server server{{.executable = "sleep",
                 .args = {"1000"},
                 .stop_grace = 60s,
                 .expected_exit = procfix::ExpectedExit::signal(SIGTERM),
                 .readiness = Readiness::socket_activation()}};
  const procfix::StopReport report = server.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_LT(report.stop_duration, 30s);  // a hang catcher only
}

// A server with no handler for the stop signal that ends on its own while the stop waits for
// that handler was reported "stopped cleanly: it exited with status 0", though no signal was sent.
TEST(FaultStop, ServerEndingWhileTheStopWaitsForItsHandlerEndedBeforeTheStop) {
  Server server{{.executable = "/bin/sh",
                 .args = {"-c", "echo '{}' >&$PROCFIX_READY_FD; exec sleep 0.05"},
                 .stop_grace = 20s,  // the handler wait: 1 s, far more than the 50 ms
                 .readiness = Readiness::ready_fd({.require_address = false})}};
  const procfix::StopReport report = server.stop();
  EXPECT_TRUE(report.exited_before_stop) << report.describe();
  EXPECT_FALSE(report.ok());
  EXPECT_FALSE(report.needed_kill);
  EXPECT_THAT(report.describe(), HasSubstr("had already ended before it was stopped"));
}

// stop_servers() waited for each server's handler in turn before signalling it (found by an
// outside-tester pass): eight servers without a handler at a 2 s grace took eight handler waits
// of 1 s each, and a server behind them got its stop signal seconds late. The waits now run
// together, so the whole stop takes one handler wait plus the deaths.
TEST(FaultStop, StopServersWaitsForTheHandlersOfAllServersAtOnce) {
  constexpr int kServers = 8;
  constexpr auto kGrace = 2s;  // the handler wait: min(1 s, grace / 2) = 1 s
  std::vector<ServerOptions> options;
  for (int i = 0; i < kServers; ++i) {
    options.push_back({.executable = "sleep",
                       .args = {"1000"},
                       .name = "no-handler-" + std::to_string(i),
                       .stop_grace = kGrace,
                       .readiness = Readiness::socket_activation()});  // ready at exec
  }
  std::vector<Server> servers = procfix::start_servers(std::move(options));
  const auto began = std::chrono::steady_clock::now();
  const std::vector<procfix::StopReport> reports = procfix::stop_servers(servers);
  const auto took = std::chrono::steady_clock::now() - began;
  ASSERT_EQ(reports.size(), static_cast<std::size_t>(kServers));
  for (const procfix::StopReport& report : reports) {
    // No handler ever came: each was given the wait, then ended by the signal's default action.
    EXPECT_EQ(report.status, procfix::ExitStatus::killed_by(SIGTERM)) << report.describe();
    EXPECT_FALSE(report.needed_kill) << report.describe();
  }
  // In turn, the waits add up to kServers × 1 s; together they take 1 s. Half the sum tells the
  // two apart with a wide margin on a loaded machine.
  EXPECT_LT(took, kServers * 1s / 2) << "stop_servers() waited for the handlers one by one";
}

// A server whose main thread has ended (pthread_exit()) while another thread runs on shows as a
// zombie in /proc/<pid>/stat. The stop took that for its end and signalled it at once, killing a
// clean server whose other thread was about to take charge of the signal.
TEST(FaultStop, ServerWhoseMainThreadEndedStillGetsTheWaitForItsHandler) {
  for (int i = 0; i < 20; ++i) {
    Server server{{.executable = fault_child("late_handler"),
                   .args = {"--main-thread-exits"},
                   .ready_timeout = 60s,
                   .stop_grace = 10s}};
    const procfix::StopReport report = server.stop();
    EXPECT_TRUE(report.ok()) << "stop " << i << ": " << report.describe();
  }
}

// stop_servers() timed every server's stop until all of them had ended, so a server that stopped
// at once reported the slowest one's duration ("stop took 2001 ms").
TEST(FaultStop, StopServersTimesEachServersOwnStop) {
  std::vector<Server> servers = procfix::start_servers({procfix::testing::sample_child(),
                                                        {.executable = PROCFIX_SAMPLE_CHILD,
                                                         .args = {"--ignore-sigterm"},
                                                         .name = "ignores-sigterm",
                                                         .stop_grace = 2s}});
  const std::vector<procfix::StopReport> reports = procfix::stop_servers(servers);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_TRUE(reports[0].ok()) << reports[0].describe();
  EXPECT_LT(reports[0].stop_duration, 1s) << reports[0].describe();  // not the other's 2 s
  EXPECT_EQ(servers[0].timing().stop_duration(), reports[0].stop_duration);
  EXPECT_TRUE(reports[1].needed_kill) << reports[1].describe();
  EXPECT_GE(reports[1].stop_duration, 2s) << reports[1].describe();
}

// Issue 13 item 21: a failed start (deadline) gets the stop signal first, so the server can
// remove its lock files; SIGKILL only if it does not end.
TEST(FaultStart, AFailedStartSendsTheStopSignalBeforeSigkill) {
  const std::filesystem::path lock =
      std::filesystem::temp_directory_path() / (procfix::testing::unique_token() + ".lock");
  const StartError e = procfix::testing::start_failure({
      .executable = fault_child("lock_file_server"),
      .args = {"--lock=" + lock.string()},
      .ready_timeout = 300ms,
  });
  EXPECT_EQ(e.reason(), StartError::Reason::ready_timeout);
  EXPECT_THAT(e.what(), HasSubstr("it has been stopped with SIGTERM"));
  EXPECT_FALSE(std::filesystem::exists(lock)) << "the server was not allowed to clean up";
  std::filesystem::remove(lock);
}

// Issue 13 item 21: one that ignores the stop signal is killed after a short grace.
TEST(FaultStart, AFailedStartKillsAServerIgnoringTheStopSignalAfterAShortGrace) {
  const StartError e =
      procfix::testing::start_failure({.executable = PROCFIX_SAMPLE_CHILD,
                                       .args = {"--never-ready", "--ignore-sigterm"},
                                       .ready_timeout = 200ms,
                                       .stop_grace = 100ms});
  EXPECT_THAT(e.what(), HasSubstr("did not end within 100 ms of SIGTERM and has been killed"));
}

// Issue 13 item 22: a socket-activated server that dies while the start is still waiting (here
// for another server) fails the start instead of counting as started.
TEST(FaultStart, SocketActivatedServerThatDiesBeforeTheStartReturnsFailsIt) {
  std::vector<ServerOptions> options{
      procfix::testing::sample_child({"--start-delay=300"}),
      {.executable = "sh",
       .args = {"-c", "exit 3"},
       .name = "dies-at-once",
       .readiness = Readiness::socket_activation()},
  };
  try {
    std::vector<Server> servers = procfix::start_servers(std::move(options));
    ADD_FAILURE() << "the start succeeded although a server had died";
  } catch (const StartError& e) {
    EXPECT_EQ(e.server(), "dies-at-once");
    EXPECT_EQ(e.reason(), StartError::Reason::exited_before_ready);
    // Seen by the mode's first look or after the others were ready: either way, before the start
    // returned.
    EXPECT_THAT(e.what(), HasSubstr("server 'dies-at-once'"));
    EXPECT_THAT(e.what(), HasSubstr("exited with status 3"));
  }
}

// Issue 13 item 12: milliseconds::max() is "no limit", never an overflow into the past.
TEST(FaultOptions, MaximalDurationsMeanNoLimit) {
  Server server{{.executable = PROCFIX_SAMPLE_CHILD,
                 .ready_timeout = std::chrono::milliseconds::max(),
                 .stop_grace = std::chrono::milliseconds::max()}};
  const procfix::StopReport report = server.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_FALSE(report.needed_kill);
}

// Issue 13 item 12: a ready_timeout far beyond what nanoseconds hold still waits for readiness.
TEST(FaultOptions, HugeReadyTimeoutDoesNotTimeOutAtOnce) {
  Server server{{.executable = PROCFIX_SAMPLE_CHILD,
                 .args = {"--start-delay=50"},
                 .ready_timeout = std::chrono::hours{24 * 365 * 1000}}};
  EXPECT_TRUE(server.endpoint().has_address());
}

// Issue 13 item 14: NUL bytes are rejected, naming the field, before anything is spawned.
TEST(FaultOptions, NulBytesAreRejectedNamingTheField) {
  using namespace std::string_literals;
  auto rejected = [](ServerOptions options) -> std::string {
    try {
      Server server{std::move(options)};
    } catch (const procfix::OptionsError& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_THAT(rejected({.executable = PROCFIX_SAMPLE_CHILD, .args = {"--ok", "bad\0tail"s}}),
              HasSubstr(".args[1] contains a NUL byte at offset 3"));
  EXPECT_THAT(rejected({.executable = std::string{PROCFIX_SAMPLE_CHILD} + "\0x"s}),
              HasSubstr(".executable contains a NUL byte"));
  EXPECT_THAT(rejected({.executable = PROCFIX_SAMPLE_CHILD, .env = {{"KEY", "va\0lue"s}}}),
              HasSubstr(".env[\"KEY\"] contains a NUL byte at offset 2"));
  EXPECT_THAT(rejected({.executable = PROCFIX_SAMPLE_CHILD, .env = {{"K\0EY"s, "value"}}}),
              HasSubstr(".env key 'K...' contains a NUL byte at offset 1"));
  EXPECT_THAT(rejected({.executable = PROCFIX_SAMPLE_CHILD, .working_directory = "/tmp\0x"s}),
              HasSubstr(".working_directory contains a NUL byte"));
}

// Issue 13 item 13 (test side): a relative executable resolves against the test process's
// working directory at the start, whatever the server's working directory is.
TEST(FaultStart, RelativeExecutableResolvesAgainstTheTestsDirectoryAtTheStart) {
  const std::filesystem::path saved = std::filesystem::current_path();
  const std::filesystem::path sample{PROCFIX_SAMPLE_CHILD};
  std::filesystem::current_path(sample.parent_path());
  {
    Server server{{.executable = "./" + sample.filename().string(), .working_directory = "/"}};
    EXPECT_TRUE(server.endpoint().has_address());
  }
  std::filesystem::current_path(saved);
}

// Issue 13 item 15: running out of fds is a StartError naming the server and EMFILE.
TEST(FaultStart, RunningOutOfFdsIsAStartErrorNamingTheServer) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizers' own checks need fds (UBSan's vptr check opens a pipe): not here.
  GTEST_SKIP() << "fd exhaustion breaks the sanitizers' runtime";
#endif
  Server warm{procfix::testing::sample_child()};  // the supervisor and the pump exist already
  std::vector<int> hoard;
  for (int fd; (fd = ::dup(0)) >= 0;) hoard.push_back(fd);
  std::string what = "started";
  try {
    Server server{{.executable = PROCFIX_SAMPLE_CHILD, .name = "starved"}};
  } catch (const StartError& e) {
    what = e.what();
  } catch (const std::exception& e) {
    what = std::string{"not a StartError: "} + e.what();
  }
  for (int fd : hoard) ::close(fd);
  EXPECT_THAT(what, HasSubstr("server 'starved' failed to start"));
  EXPECT_THAT(what, HasSubstr("EMFILE"));
}

}  // namespace

namespace {

// Issue 13 item 16: with output_tail_bytes = 0 a failure says the stderr was not kept, not that
// it was empty.
TEST(FaultStart, StderrThatWasNotKeptIsNotCalledEmpty) {
  ServerOptions options =
      procfix::testing::sample_child({"--stderr-lines=3", "--exit-before-ready=1"});
  options.output_tail_bytes = 0;
  const StartError e = procfix::testing::start_failure(options);
  EXPECT_THAT(e.what(), HasSubstr("not kept: output_tail_bytes = 0"));
  EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("was empty")));
}

}  // namespace

#include <linux/close_range.h>
#include <sys/syscall.h>

#include <cstdlib>

#include "support/command.hpp"

namespace {

constexpr const char* kCloseFdsMode = "PROCFIX_FAULT_CLOSE_FDS_PROGRAM";

// Not a test: the program FaultLauncher.CodeClosingEveryFdAboveTwoLeavesProcfixWorking runs (this
// binary again). Starts and stops a server, closes every fd above 2 as daemonising code does,
// then must start, use and stop servers again, including one whose start fails.
TEST(FaultStart, DISABLED_ProgramClosingEveryFdAboveTwo) {
  const char* token = std::getenv(kCloseFdsMode);
  if (token == nullptr) GTEST_SKIP() << "run by CodeClosingEveryFdAboveTwoLeavesProcfixWorking";
  {
    Server first{procfix::testing::sample_child()};
    EXPECT_TRUE(first.stop().ok());
  }
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  try {
    Server failing{
        {.executable = PROCFIX_SAMPLE_CHILD,
         .args = {"--never-ready", std::string{"--extra-json={\"t\":\""} + token + "\"}"},
         .ready_timeout = 200ms}};
    ADD_FAILURE() << "a never-ready server started";
  } catch (const StartError& e) {
    std::printf("failed start: %s\n", e.what());
  }
  Server second{
      procfix::testing::sample_child({std::string{"--extra-json={\"t\":\""} + token + "\"}"})};
  EXPECT_EQ(second.endpoint().message().value("t", ""), token);
  const procfix::StopReport report = second.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
  std::printf("second server ok\n");
}

// Issue 13 item 19: code that closes every fd above 2 after procfix has run (daemonising code,
// some test helpers) used to leave procfix broken for the rest of the process, and one failed
// start left its server running. Now the closed fds are noticed and replaced.
TEST(FaultStart, CodeClosingEveryFdAboveTwoLeavesProcfixWorking) {
#if defined(__SANITIZE_THREAD__)
  // Closing every fd under the output pump's feet, and reusing the numbers, is the very fd race
  // ThreadSanitizer reports (the pump thread's epoll_wait against a later close of the reused
  // number): the scenario's own race, not procfix's. Covered by the default and ASan builds.
  GTEST_SKIP() << "closing all fds under a running thread is what TSan reports as a race";
#endif
  const std::string token = procfix::testing::unique_token("close-fds");
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  ::setenv(kCloseFdsMode, token.c_str(), 1);
  const procfix::testing::CommandResult result = procfix::testing::run_command(
      {exe, "--gtest_filter=FaultStart.DISABLED_ProgramClosingEveryFdAboveTwo",
       "--gtest_also_run_disabled_tests"});
  ::unsetenv(kCloseFdsMode);
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("second server ok"));
  EXPECT_THAT(result.output, HasSubstr("was not ready within its ready_timeout"));
  EXPECT_TRUE(procfix::testing::survivors_with(token).empty()) << result.output;
}

// Issue 13 item 15: an unwritable log_directory is a StartError naming the server and the file,
// and nothing is left running.
TEST(FaultStart, UnwritableLogDirectoryIsAStartErrorNamingTheServer) {
  const std::string token = procfix::testing::unique_token("log-dir");
  std::string what = "started";
  try {
    Server server{{.executable = PROCFIX_SAMPLE_CHILD,
                   .args = {"--extra-json={\"t\":\"" + token + "\"}"},
                   .name = "logged",
                   .log_directory = "/proc/self/no-such-dir"}};
  } catch (const StartError& e) {
    what = e.what();
  } catch (const std::exception& e) {
    what = std::string{"not a StartError: "} + e.what();
  }
  EXPECT_THAT(what, ::testing::ContainsRegex("server 'logged' \\(pid [0-9]+\\) failed to start"));
  EXPECT_THAT(what, HasSubstr("cannot open log file"));
  EXPECT_TRUE(procfix::testing::survivors_with(token).empty());
}

}  // namespace
