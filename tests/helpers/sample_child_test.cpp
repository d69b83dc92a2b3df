// sample_child, spawned by hand (posix_spawn + readiness pipe): the helpers working in a real
// server process under real signals, and each of sample_child's switches.
#include <sys/socket.h>
#include <time.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "child_process.hpp"

namespace {

using namespace procfix::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

std::string address_of(nlohmann::json& message) {
  return message.at("address").get<std::string>();
}

// ---- Graceful shutdown on real signals ------------------------------------------------------

class SampleChildSignal : public ::testing::TestWithParam<int> {};

// Sent right after readiness, before the server's io thread may even run: the signal is queued,
// not lost, and the server drains and exits 0.
TEST_P(SampleChildSignal, StopsCleanlyWithStatusZero) {
  Child child{{}};
  auto message = child.ready_message();
  EXPECT_EQ(message.at("pid"), child.pid());
  child.send_signal(GetParam());
  const int status = child.wait();
  EXPECT_TRUE(exited_with(status, 0)) << describe_status(status);
}

INSTANTIATE_TEST_SUITE_P(EachStopSignal, SampleChildSignal,
                         ::testing::Values(SIGINT, SIGTERM, SIGQUIT), [](const auto& param_info) {
                           return std::string{sigabbrev_np(param_info.param)};
                         });

TEST(SampleChildSignals, ServesRequestsUntilStopped) {
  Child child{{}};
  auto message = child.ready_message();
  LineClient client{address_of(message)};
  EXPECT_EQ(client.exchange("ping"), "pong");
  EXPECT_EQ(client.exchange("echo hello world"), "hello world");
  EXPECT_EQ(client.exchange("pid"), std::to_string(child.pid()));
  EXPECT_EQ(client.exchange("work 5"), "done");
  EXPECT_EQ(client.exchange("bogus"), "error unknown command: bogus");
  EXPECT_EQ(client.exchange("work x"), "error work needs a number of milliseconds");
  child.send_signal(SIGTERM);
  EXPECT_EQ(client.receive(), std::nullopt);  // an idle connection is closed by the drain
  EXPECT_TRUE(exited_with(child.wait(), 0));
}

class SampleChildNotifySocket : public ::testing::TestWithParam<bool> {};

TEST_P(SampleChildNotifySocket, SendsReadyThenStoppingOnSigterm) {
  NotifyListener listener{/*abstract=*/GetParam()};
  Child child{{.env = {listener.env()}}};
  auto message = child.ready_message();
  EXPECT_EQ(listener.receive(), "READY=1");
  child.send_signal(SIGTERM);
  EXPECT_EQ(listener.receive(), "STOPPING=1");
  EXPECT_TRUE(exited_with(child.wait(), 0));
}

TEST_P(SampleChildNotifySocket, WorksWithoutTheReadyPipe) {
  NotifyListener listener{/*abstract=*/GetParam()};
  Child child{{.env = {listener.env()}, .ready_pipe = false}};
  EXPECT_EQ(listener.receive(), "READY=1");
  child.send_signal(SIGTERM);
  EXPECT_EQ(listener.receive(), "STOPPING=1");
  EXPECT_TRUE(exited_with(child.wait(), 0));
}

INSTANTIATE_TEST_SUITE_P(PathAndAbstractName, SampleChildNotifySocket, ::testing::Bool(),
                         [](const auto& param_info) {
                           return param_info.param ? "Abstract" : "Path";
                         });

// Issue 5's drain under load: 50 requests in flight when SIGTERM arrives all complete, a new
// connection is refused, and the exit status is 0. "In flight" is known from each request's
// "started" line; "acceptor closed" from STOPPING=1, which sample_child sends after closing it.
TEST(SampleChildDrain, FinishesFiftyInFlightRequestsAndRefusesNewConnections) {
  NotifyListener listener{false};
  Child child{{.env = {listener.env()}}};
  auto message = child.ready_message();
  const std::string address = address_of(message);
  ASSERT_EQ(listener.receive(), "READY=1");

  std::vector<std::unique_ptr<LineClient>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<LineClient>(address));
    clients.back()->send("work-ack 200");
  }
  for (auto& client : clients) ASSERT_EQ(client->receive(), "started");

  child.send_signal(SIGTERM);
  ASSERT_EQ(listener.receive(), "STOPPING=1");
  const Fd late = connect_to(address);
  EXPECT_FALSE(late) << "a connection after SIGTERM was accepted";
  EXPECT_EQ(errno, ECONNREFUSED);

  int done = 0;
  for (auto& client : clients) {
    if (client->receive() == "done") ++done;
    EXPECT_EQ(client->receive(), std::nullopt);  // then closed
  }
  EXPECT_EQ(done, 50);
  const int status = child.wait();
  EXPECT_TRUE(exited_with(status, 0)) << describe_status(status);
}

TEST(SampleChildDrain, ASecondSignalForcesExitWith128PlusSignal) {
  NotifyListener listener{false};
  Child child{{.env = {listener.env()}}};
  auto message = child.ready_message();
  ASSERT_EQ(listener.receive(), "READY=1");
  LineClient client{address_of(message)};
  client.send("work-ack 600000");
  ASSERT_EQ(client.receive(), "started");
  child.send_signal(SIGTERM);
  ASSERT_EQ(listener.receive(), "STOPPING=1");  // the first signal was handled
  child.send_signal(SIGINT);
  const int status = child.wait();
  EXPECT_TRUE(exited_with(status, 128 + SIGINT)) << describe_status(status);
}

TEST(SampleChildDrain, OverrunningTheShutdownDeadlineExitsOneNamingTheWorker) {
  NotifyListener listener{false};
  Child child{
      {.args = {"--shutdown-deadline=100"}, .env = {listener.env()}, .capture_stderr = true}};
  auto message = child.ready_message();
  LineClient client{address_of(message)};
  client.send("work-ack 600000");
  ASSERT_EQ(client.receive(), "started");
  child.send_signal(SIGTERM);
  const int status = child.wait();
  EXPECT_TRUE(exited_with(status, 1)) << describe_status(status);
  EXPECT_THAT(child.read_stderr_to_eof(),
              HasSubstr("shutdown deadline of 100 ms passed with 2 workers still running: "
                        "'io-1', 'io-2'"));
}

// ---- The ready message and diagnostics ------------------------------------------------------

TEST(SampleChildReady, ReportsAddressPidAndReadyTime) {
  const std::int64_t before = monotonic_ns();
  Child child{{}};
  auto message = child.ready_message();
  const std::int64_t after = monotonic_ns();
  EXPECT_THAT(address_of(message), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_EQ(message.at("pid"), child.pid());
  EXPECT_GT(message.at("ready_ns").get<std::int64_t>(), before);
  EXPECT_LT(message.at("ready_ns").get<std::int64_t>(), after);
  EXPECT_EQ(child.read_ready_line(), std::nullopt);  // the fd was closed after the one line
  child.send_signal(SIGTERM);
  EXPECT_TRUE(exited_with(child.wait(), 0));
}

TEST(SampleChildReady, ListensOnIpv6) {
  Child child{{.args = {"--ipv6"}}};
  auto message = child.ready_message();
  EXPECT_THAT(address_of(message), ::testing::StartsWith("[::1]:"));
  LineClient client{address_of(message)};
  EXPECT_EQ(client.exchange("ping"), "pong");
}

TEST(SampleChildReady, ReportsFdsSignalsEnvironmentAndExtraJson) {
  Child child{{.args = {"--report-fds", "--report-signals", "--report-env=PROCFIX_X",
                        "--report-env=PROCFIX_UNSET", R"(--extra-json={"role":"primary"})"},
               .env = {"PROCFIX_X=42"}}};
  auto message = child.ready_message();
  EXPECT_EQ(message.at("fds"), nlohmann::json({0, 1, 2, 3}));
  EXPECT_EQ(message.at("sigblk"), "0000000000000000");
  // glibc 2.36's posix_spawn sets its reserved signals 32 and 33 to SIG_IGN in the child when
  // this (threaded) process has handlers for them, and SIG_IGN survives exec. This spawner is
  // not under test: everything else must be at its default.
  const auto ignored = std::stoull(message.at("sigign").get<std::string>(), nullptr, 16);
  EXPECT_EQ(ignored & ~((1ULL << 31) | (1ULL << 32)), 0u) << message.at("sigign");
  EXPECT_EQ(message.at("env"), nlohmann::json({{"PROCFIX_X", "42"}, {"PROCFIX_UNSET", nullptr}}));
  EXPECT_EQ(message.at("role"), "primary");
}

TEST(SampleChildReady, ReportsTheReadyFdAtAnyNumber) {
  Child child{{.args = {"--report-fds"}, .ready_fd = 57}};
  EXPECT_EQ(child.ready_message().at("fds"), nlohmann::json({0, 1, 2, 57}));
}

TEST(SampleChildReady, PrintsAReadyLineOnStdout) {
  Child child{{.args = {"--ready-line=stdout"}, .capture_stdout = true}};
  auto message = child.ready_message();
  EXPECT_EQ(child.read_stdout_line(), "sample_child listening on " + address_of(message));
}

TEST(SampleChildReady, UsesASocketPassedBySocketActivation) {
  // A bound, listening socket as fd 3; LISTEN_PID is set by the shell that execs sample_child.
  Fd listener{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener.get(), 16), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string expected = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  Child child{{.args = {"-c", std::string{"LISTEN_PID=$$ LISTEN_FDS=1 exec "} +
                                  PROCFIX_SAMPLE_CHILD + " --listen-fds"},
               .executable = "/bin/sh",
               .ready_fd = 4,
               .extra_fds = {{listener.get(), 3}}}};
  listener.reset();
  auto message = child.ready_message();
  EXPECT_EQ(address_of(message), expected);
  LineClient client{expected};
  EXPECT_EQ(client.exchange("ping"), "pong");
  child.send_signal(SIGTERM);
  EXPECT_TRUE(exited_with(child.wait(), 0));
}

// ---- Usage ----------------------------------------------------------------------------------

TEST(SampleChildUsage, HelpDocumentsEverySwitch) {
  Child child{{.args = {"--help"}, .ready_pipe = false, .capture_stdout = true}};
  const std::string help = child.read_stdout_to_eof();
  EXPECT_TRUE(exited_with(child.wait(), 0));
  for (const char* option : {"--listen=",
                             "--ipv6",
                             "--listen-fds",
                             "--shutdown-deadline=",
                             "--threads=",
                             "--report-fds",
                             "--report-signals",
                             "--report-env=",
                             "--extra-json=",
                             "--start-delay=",
                             "--stderr-lines=",
                             "--stderr-bytes=",
                             "--stdout-bytes=",
                             "--exit-before-ready=",
                             "--signal-before-ready=",
                             "--fork-holding-ready-fd",
                             "--never-ready",
                             "--close-without-message",
                             "--malformed-json",
                             "--no-address",
                             "--oversized-message=",
                             "--notify-from-outside",
                             "--notify-status=",
                             "--leave-zombie",
                             "--ready-line=",
                             "--leak-grandchild=",
                             "--ignore-sigterm",
                             "--exit-on-sigterm=",
                             "--abort-on-sigterm",
                             "--abort-mid-request",
                             "--hang-in-shutdown",
                             "--help",
                             "work-ack"}) {
    EXPECT_THAT(help, HasSubstr(option));
  }
}

TEST(SampleChildUsage, RejectsUnknownAndBadOptionsWithStatusTwo) {
  for (const char* bad : {"--frobnicate", "--exit-before-ready=x", "--ready-line=file",
                          "--extra-json=[1]", "--listen=localhost:80", "--ipv6=yes"}) {
    Child child{{.args = {bad}, .capture_stderr = true}};
    const std::string err = child.read_stderr_to_eof();
    EXPECT_TRUE(exited_with(child.wait(), 2)) << bad;
    EXPECT_THAT(err, HasSubstr("sample_child: ")) << bad;
  }
}

// ---- Misbehaviour switches ------------------------------------------------------------------

TEST(SampleChildMisbehaviour, ExitsBeforeReadyAfterItsStderrLines) {
  Child child{{.args = {"--exit-before-ready=3", "--stderr-lines=2"}, .capture_stderr = true}};
  EXPECT_EQ(child.read_ready_line(), std::nullopt);
  EXPECT_EQ(child.read_stderr_to_eof(), "sample_child stderr line 1\nsample_child stderr line 2\n");
  EXPECT_TRUE(exited_with(child.wait(), 3));
}

TEST(SampleChildMisbehaviour, RaisesASignalBeforeReady) {
  Child abort_child{{.args = {"--signal-before-ready=ABRT"}}};
  EXPECT_EQ(abort_child.read_ready_line(), std::nullopt);
  EXPECT_TRUE(killed_by(abort_child.wait(), SIGABRT));
  Child term_child{{.args = {"--signal-before-ready=15"}}};
  EXPECT_TRUE(killed_by(term_child.wait(), SIGTERM));
}

TEST(SampleChildMisbehaviour, WritesMalformedJson) {
  Child child{{.args = {"--malformed-json"}}};
  EXPECT_EQ(child.read_ready_line(), R"({"address": oops)");
}

TEST(SampleChildMisbehaviour, WritesAMessageWithoutAddress) {
  Child child{{.args = {"--no-address"}}};
  auto message = child.ready_message();
  EXPECT_FALSE(message.contains("address"));
  EXPECT_EQ(message.at("pid"), child.pid());
}

TEST(SampleChildMisbehaviour, WritesAnOversizedLine) {
  Child child{{.args = {"--oversized-message=70000"}}};
  const auto line = child.read_ready_line();
  ASSERT_TRUE(line);
  EXPECT_EQ(line->size(), 70000u);
  EXPECT_NO_THROW((void)nlohmann::json::parse(*line).at("address"));
}

TEST(SampleChildMisbehaviour, ClosesTheReadyFdWithoutAMessageAndKeepsRunning) {
  Child child{{.args = {"--close-without-message"}}};
  EXPECT_EQ(child.read_ready_line(), std::nullopt);
  EXPECT_EQ(child.ready_rest(), "");
  child.send_signal(SIGTERM);
  EXPECT_TRUE(exited_with(child.wait(), 0));  // it was still running, and stops cleanly
}

TEST(SampleChildMisbehaviour, NeverReadyStillStopsOnSigterm) {
  Child child{{.args = {"--never-ready", "--ready-line=stderr"}, .capture_stderr = true}};
  ASSERT_THAT(child.read_stderr_line().value_or(""), HasSubstr("sample_child listening on"));
  child.send_signal(SIGTERM);
  EXPECT_TRUE(exited_with(child.wait(), 0));
  EXPECT_EQ(child.read_ready_line(), std::nullopt);
  EXPECT_EQ(child.ready_rest(), "");
}

TEST(SampleChildMisbehaviour, AForkedChildHoldsTheReadyFdUntilSampleChildExits) {
  Child child{{.args = {"--fork-holding-ready-fd"}}};
  auto message = child.ready_message();
  // The line came, but no EOF: the forked holder still has the write end.
  ASSERT_EQ(::fcntl(child.ready_fd(), F_SETFL, O_NONBLOCK), 0);
  char byte;
  EXPECT_EQ(::read(child.ready_fd(), &byte, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  child.send_signal(SIGTERM);
  EXPECT_TRUE(exited_with(child.wait(), 0));
  ASSERT_TRUE(wait_readable(child.ready_fd()));  // the holder exits by itself now
  EXPECT_EQ(::read(child.ready_fd(), &byte, 1), 0);
}

TEST(SampleChildMisbehaviour, SigtermSwitches) {
  {
    Child child{{.args = {"--exit-on-sigterm=4"}}};
    (void)child.ready_message();
    child.send_signal(SIGTERM);
    EXPECT_TRUE(exited_with(child.wait(), 4));
  }
  {
    Child child{{.args = {"--abort-on-sigterm"}}};
    (void)child.ready_message();
    child.send_signal(SIGTERM);
    EXPECT_TRUE(killed_by(child.wait(), SIGABRT));
  }
  {
    Child child{{.args = {"--ignore-sigterm"}}};
    auto message = child.ready_message();
    child.send_signal(SIGTERM);  // ignored: discarded when sent
    LineClient client{address_of(message)};
    EXPECT_EQ(client.exchange("ping"), "pong");
    child.send_signal(SIGINT);
    EXPECT_TRUE(exited_with(child.wait(), 0));
  }
}

TEST(SampleChildMisbehaviour, AbortsMidRequest) {
  Child child{{.args = {"--abort-mid-request"}}};
  auto message = child.ready_message();
  LineClient client{address_of(message)};
  EXPECT_EQ(client.exchange("ping"), "pong");
  client.send("work 10");
  EXPECT_EQ(client.receive(), std::nullopt);
  EXPECT_TRUE(killed_by(child.wait(), SIGABRT));
}

TEST(SampleChildMisbehaviour, HangsInShutdownUntilKilled) {
  Child child{{.args = {"--hang-in-shutdown", "--shutdown-deadline=100"}, .capture_stderr = true}};
  (void)child.ready_message();
  child.send_signal(SIGTERM);
  std::string err;
  while (auto line = child.read_stderr_line()) {
    err += *line + "\n";
    if (line->find("staying hung") != std::string::npos) break;
  }
  EXPECT_THAT(err, HasSubstr("1 worker still running: 'hang-in-shutdown'"));
  child.send_signal(SIGTERM);  // a second signal does not end it either
  child.send_signal(SIGKILL);
  EXPECT_TRUE(killed_by(child.wait(), SIGKILL));
}

class SampleChildLeak : public ::testing::TestWithParam<std::string> {};

TEST_P(SampleChildLeak, LeavesAProcessInItsOwnSession) {
  Child child{{.args = {"--leak-grandchild=" + GetParam()}, .capture_stderr = true}};
  (void)child.ready_message();
  const auto line = child.read_stderr_line();
  ASSERT_TRUE(line);
  ASSERT_THAT(*line, HasSubstr("sample_child: leaked pid "));
  const pid_t leaked = std::stoi(line->substr(line->rfind(' ') + 1));
  EXPECT_EQ(::getsid(leaked), leaked);
  child.send_signal(SIGTERM);
  EXPECT_TRUE(exited_with(child.wait(), 0));
  EXPECT_EQ(::kill(leaked, 0), 0) << "the leaked process did not outlive sample_child";
  ::kill(leaked, SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(Modes, SampleChildLeak, ::testing::Values("setsid", "daemon"));

TEST(SampleChildSignals, SpamsOutputOnRequest) {
  Child child{{.capture_stdout = true}};
  auto message = child.ready_message();
  std::string out;
  {
    LineClient client{address_of(message)};
    std::thread reader{[&] { out = child.read_stdout_to_eof(); }};
    EXPECT_EQ(client.exchange("spam-stdout 500000"), "spammed");
    child.send_signal(SIGTERM);
    EXPECT_TRUE(exited_with(child.wait(), 0));
    reader.join();
  }
  EXPECT_EQ(out.size(), 500000u);
}

TEST(SampleChildMisbehaviour, SpamsStdoutAndStderrBeforeReady) {
  Child child{{.args = {"--stdout-bytes=300000", "--stderr-bytes=200000", "--exit-before-ready=0"},
               .capture_stdout = true,
               .capture_stderr = true}};
  std::string out;
  std::thread reader{[&] { out = child.read_stdout_to_eof(); }};
  const std::string err = child.read_stderr_to_eof();
  reader.join();
  EXPECT_EQ(out.size(), 300000u);
  EXPECT_EQ(err.size(), 200000u);
  EXPECT_TRUE(exited_with(child.wait(), 0));
}

}  // namespace
