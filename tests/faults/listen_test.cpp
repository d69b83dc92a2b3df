// The fault matrix, listen area: Readiness::listen() with real servers that have no readiness
// protocol, and with servers that never listen, listen on the wrong address, die, fork.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "detail/socket_address.hpp"
#include "faults/fault_support.hpp"
#include "procfix/fixtures/errors.hpp"
#include "procfix/fixtures/server.hpp"
#include "support/command.hpp"
#include "support/sample_child.hpp"

namespace {

using namespace std::chrono_literals;
using procfix::Readiness;
using procfix::Server;
using procfix::ServerOptions;
using procfix::StartError;
using procfix::testing::fault_child;
using procfix::testing::start_failure;
using ::testing::HasSubstr;
using ::testing::StartsWith;

ServerOptions listen_server(std::string executable, std::vector<std::string> args,
                            Readiness::Listen listen = {}) {
  return ServerOptions{.executable = std::move(executable),
                       .args = std::move(args),
                       .ready_timeout = 60s,
                       .stop_grace = 10s,
                       .readiness = Readiness::listen(std::move(listen))};
}

ServerOptions listen_child(std::vector<std::string> args, Readiness::Listen listen = {}) {
  return listen_server(fault_child("listen_child"), std::move(args), std::move(listen));
}

// Connects to `address` ("127.0.0.1:PORT" or a unix path), sends `request` and returns all
// that comes back until the peer closes (or the first `until` text, if given).
std::string round_trip(const std::string& address, const std::string& request,
                       const std::string& until = {}) {
  std::string why;
  const auto to = procfix::detail::parse_socket_address(address, why);
  if (!to) return "bad address: " + why;
  const int fd = ::socket(to->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, to->get(), to->length) != 0) {
    ::close(fd);
    return "connect failed";
  }
  timeval bound{30, 0};  // only catches a hang
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  (void)!::write(fd, request.data(), request.size());
  std::string reply;
  char chunk[4096];
  ssize_t n;
  while ((n = ::read(fd, chunk, sizeof chunk)) > 0) {
    reply.append(chunk, static_cast<std::size_t>(n));
    if (!until.empty() && reply.find(until) != std::string::npos) break;
  }
  ::close(fd);
  return reply;
}

std::vector<std::string> listened(const Server& server) {
  return server.endpoint().message().at("listened").get<std::vector<std::string>>();
}

std::string temp_socket_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (procfix::testing::unique_token("pl") + "-" + name))
      .string();
}

// Issue 13 item 2: an unmodified server told to listen on port 0 is ready at its listen(), and
// the endpoint is the port it really got.
TEST(FaultListen, PythonHttpServerOnPortZeroIsReadyWithItsRealPort) {
  Server server{listen_server("python3", {"-m", "http.server", "0", "--bind", "127.0.0.1"})};
  const std::string address = server.endpoint().address();
  EXPECT_THAT(address, StartsWith("127.0.0.1:"));
  EXPECT_NE(server.endpoint().port(), 0);
  EXPECT_THAT(listened(server), ::testing::ElementsAre(address));
  EXPECT_THAT(round_trip(address, "GET / HTTP/1.0\r\n\r\n"), StartsWith("HTTP/1.0 200"));
  (void)server.stop();
}

// Issue 13 item 2: node's http server on port 0.
TEST(FaultListen, NodeServerOnPortZeroIsReadyWithItsRealPort) {
  if (procfix::testing::run_command({"node", "--version"}).status != 0) {
    GTEST_SKIP() << "node is not installed";
  }
  Server server{listen_server(
      "node", {"-e", "require('http').createServer((q,r)=>r.end('ok')).listen(0,'127.0.0.1')"})};
  EXPECT_THAT(server.endpoint().address(), StartsWith("127.0.0.1:"));
  EXPECT_THAT(round_trip(server.endpoint().address(), "GET / HTTP/1.0\r\n\r\n"), HasSubstr("ok"));
  (void)server.stop();
}

// Issue 13 item 2: redis with only a unix socket (--port 0 disables TCP): the endpoint is the
// path, reached by its .address option.
TEST(FaultListen, RedisUnixSocketIsTheEndpoint) {
  if (procfix::testing::run_command({"redis-server", "--version"}).status != 0) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  const std::string path = temp_socket_path("redis.sock");
  Server server{listen_server(
      "redis-server", {"--port", "0", "--unixsocket", path, "--save", "", "--appendonly", "no"},
      {.address = path})};
  EXPECT_EQ(server.endpoint().address(), path);
  EXPECT_THAT(round_trip(path, "PING\r\n", "\r\n"), StartsWith("+PONG"));
  (void)server.stop();
}

// Issue 13 item 2: a server that never listens times out, and the error names the mode.
TEST(FaultListen, NeverListeningTimesOutNamingTheMode) {
  ServerOptions options = listen_child({"--never"});
  options.ready_timeout = 500ms;
  const StartError error = start_failure(std::move(options));
  EXPECT_EQ(error.reason(), StartError::Reason::ready_timeout);
  EXPECT_THAT(error.what(), HasSubstr("no listen() call (readiness mode listen)"));
}

// Issue 13 item 2: one that listens (not enough) and dies fails with its exit and says where it
// did listen.
TEST(FaultListen, ListensThenDiesFailsWithItsExitAndWhatItListenedOn) {
  const StartError error = start_failure(listen_child({"127.0.0.1:0", "--exit=3"}, {.count = 2}));
  EXPECT_EQ(error.reason(), StartError::Reason::exited_before_ready);
  EXPECT_THAT(error.what(), HasSubstr("exited with status 3"));
  EXPECT_THAT(error.what(), HasSubstr("1 of 2 listen() calls (readiness mode listen); it "
                                      "listened on 127.0.0.1:"));
}

// Issue 13 item 2: with .address, a listen() on another address does not make it ready; the
// timeout lists what it did listen on.
TEST(FaultListen, WrongAddressIsNotReadyAndTheTimeoutListsWhatItListenedOn) {
  const std::string other = temp_socket_path("other.sock");
  ServerOptions options =
      listen_child({"127.0.0.1:0", other}, {.address = temp_socket_path("wanted.sock")});
  options.ready_timeout = 1s;
  const StartError error = start_failure(std::move(options));
  std::filesystem::remove(other);
  EXPECT_EQ(error.reason(), StartError::Reason::ready_timeout);
  EXPECT_THAT(error.what(), HasSubstr("no listen() on /"));
  EXPECT_THAT(error.what(), HasSubstr("it listened on 127.0.0.1:"));
  EXPECT_THAT(error.what(), HasSubstr(" " + other));
}

// Issue 13 item 2: with .address, ready at the listen() on that address, not the first one.
TEST(FaultListen, ReadyAtTheListenOnTheGivenAddress) {
  const std::string wanted = temp_socket_path("wanted.sock");
  Server server{listen_child({"127.0.0.1:0", wanted}, {.address = wanted})};
  EXPECT_EQ(server.endpoint().address(), wanted);
  ASSERT_EQ(listened(server).size(), 2u);
  EXPECT_THAT(listened(server)[0], StartsWith("127.0.0.1:"));
  EXPECT_EQ(round_trip(wanted, "ping\n"), "pong\n");
  server.stop_and_expect_clean();
  std::filesystem::remove(wanted);
}

// Outside-tester pass: Listen::address is compared as getsockname() writes it, so an IPv6
// address written another way ("[0:0:0:0:0:0:0:1]") waits for the same listen().
TEST(FaultListen, NonCanonicalIpv6AddressMatchesItsListen) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_loopback;
  if (::bind(probe, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    ::close(probe);
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  const std::string bound = procfix::detail::local_address(probe);  // "[::1]:PORT"
  const std::string port = bound.substr(bound.rfind(':') + 1);
  ::close(probe);  // the port is free again; the server binds it next
  Server server{
      listen_child({"127.0.0.1:0", "[::1]:" + port}, {.address = "[0:0:0:0:0:0:0:1]:" + port})};
  EXPECT_EQ(server.endpoint().address(), "[::1]:" + port);
  EXPECT_EQ(listened(server).size(), 2u);
  server.stop_and_expect_clean();
}

// A python server in `directory` that binds and listens on each relative unix path of `names`,
// in order, then waits for SIGTERM (exit 0).
ServerOptions python_unix_listener(const std::filesystem::path& directory,
                                   const std::vector<std::string>& names,
                                   Readiness::Listen listen = {}) {
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "'" : ", '") + name + "'";
  return {.executable = "python3",
          .args = {"-c",
                   "import signal, socket, sys\n"
                   "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                   "keep = []\n"
                   "for name in [" +
                       list +
                       "]:\n"
                       "    s = socket.socket(socket.AF_UNIX)\n"
                       "    s.bind(name)\n"
                       "    s.listen()\n"
                       "    keep.append(s)\n"
                       "signal.pause()\n"},
          .working_directory = directory,
          .ready_timeout = 60s,
          .readiness = Readiness::listen(std::move(listen))};
}

// Outside-tester pass: a server listening on a relative unix socket path (redis' `unixsocket
// server.sock`) failed its start: the path is no address form. It is an opaque endpoint now,
// written "./server.sock" so that no path reads as another form ("db:6379", "@x": a second
// outside-tester pass), and `.address` can name it.
TEST(FaultListen, RelativeUnixPathIsAnOpaqueEndpoint) {
  const std::filesystem::path directory = temp_socket_path("dir");
  std::filesystem::create_directory(directory);
  Server server{python_unix_listener(directory, {"server.sock"})};
  EXPECT_EQ(server.endpoint().address(), "./server.sock");
  EXPECT_EQ(server.endpoint().kind(), procfix::Endpoint::Kind::opaque);
  server.stop_and_expect_clean();
  std::filesystem::remove_all(directory);
}

// Second outside-tester pass: a relative unix path that looks like another form was taken for
// it ("127.0.0.1:5555" as host_port, "@x" as abstract), and could satisfy an `.address` of that
// form; a relative `.address` could not be written at all.
TEST(FaultListen, RelativeUnixPathsThatLookLikeOtherFormsStayPaths) {
  const std::filesystem::path directory = temp_socket_path("dir");
  std::filesystem::create_directory(directory);
  Server server{python_unix_listener(directory, {"127.0.0.1:5555", "@x", "last.sock"},
                                     {.address = "./last.sock"})};
  EXPECT_EQ(listened(server),
            (std::vector<std::string>{"./127.0.0.1:5555", "./@x", "./last.sock"}));
  EXPECT_EQ(server.endpoint().kind(), procfix::Endpoint::Kind::opaque);
  server.stop_and_expect_clean();
  std::filesystem::remove_all(directory);
  try {
    Server never{listen_child({"127.0.0.1:0"}, {.address = "last.sock"})};
    ADD_FAILURE() << "a relative .address without './' was taken";
  } catch (const procfix::OptionsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"./NAME\"")) << e.what();
  }
}

// Issue 13 item 2: .count = 2 waits for the second listen(); the message lists both.
TEST(FaultListen, CountTwoIsReadyAtTheSecondListen) {
  Server server{listen_child({"127.0.0.1:0", "127.0.0.1:0"}, {.count = 2})};
  const std::vector<std::string> all = listened(server);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(server.endpoint().address(), all[1]);
  EXPECT_NE(all[0], all[1]);
  EXPECT_EQ(round_trip(all[0], "ping\n"), "pong\n");
  EXPECT_EQ(round_trip(all[1], "ping\n"), "pong\n");
  server.stop_and_expect_clean();
}

// Issue 13 item 2: a listen() in a forked worker counts.
TEST(FaultListen, ListenInAForkedWorkerCounts) {
  Server server{listen_child({"--fork", "127.0.0.1:0"})};
  EXPECT_EQ(round_trip(server.endpoint().address(), "ping\n"), "pong\n");
  const procfix::StopReport report = server.stop();
  EXPECT_TRUE(report.leaks.empty()) << report.describe();
}

// Outside-tester pass: a listen() from a thread other than the main one. The notification names
// the thread, which has no pidfd of its own before Linux 6.9; the call was answered ESRCH, the
// server failed to listen, and the start failure listed no failed call.
TEST(FaultListen, ListenFromAThreadOtherThanTheMainOneCounts) {
  Server server{listen_child({"--thread", "127.0.0.1:0", "127.0.0.1:0"}, {.count = 2})};
  const std::vector<std::string> all = listened(server);
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(round_trip(all[0], "ping\n"), "pong\n");
  EXPECT_EQ(round_trip(all[1], "ping\n"), "pong\n");
  server.stop_and_expect_clean();
}

// Issue 13 item 2: listen() after readiness keeps working (the supervisor answers it), and the
// server serves on both sockets.
TEST(FaultListen, ListenAfterReadinessStillWorks) {
  Server server{listen_child({"127.0.0.1:0"})};
  const std::string first = server.endpoint().address();
  const std::string reply = round_trip(first, "listen\n");
  ASSERT_THAT(reply, StartsWith("listened ")) << reply;
  const std::string second = "127.0.0.1:" + reply.substr(9, reply.size() - 10);
  EXPECT_EQ(round_trip(second, "ping\n"), "pong\n");
  EXPECT_EQ(round_trip(first, "ping\n"), "pong\n");
  server.stop_and_expect_clean();
}

// Issue 13 item 2: the in-process launcher cannot answer listen(): a clear error says so.
TEST(FaultListen, InProcessLauncherFailsNamingTheSupervisor) {
  ::setenv("PROCFIX_LAUNCHER", "in-process", 1);
  const StartError error = start_failure(listen_child({"127.0.0.1:0"}));
  ::unsetenv("PROCFIX_LAUNCHER");
  EXPECT_EQ(error.reason(), StartError::Reason::spawn_failed);
  EXPECT_THAT(error.what(), HasSubstr("readiness mode listen needs procfix-supervisor"));
}

// Issue 13 item 2: bad options fail, naming the field.
TEST(FaultListen, CountOutOfRangeIsAnOptionsError) {
  EXPECT_THROW(Server{listen_child({"127.0.0.1:0"}, {.count = 0})}, procfix::OptionsError);
}

// Issue 13 item 2: procfix-run --ready=listen:N prints the address the server listens on.
TEST(FaultListen, ProcfixRunReadyListenPrintsTheListenedAddress) {
  // stdin is closed at once: procfix-run stops the server after printing its readiness.
  const procfix::testing::CommandResult result = procfix::testing::run_command(
      {"sh", "-c", "exec \"$0\" --ready=listen:2 -- \"$1\" 127.0.0.1:0 127.0.0.1:0 </dev/null",
       PROCFIX_RUN, fault_child("listen_child")});
  EXPECT_THAT(result.output, HasSubstr("\"ready\":true"));
  EXPECT_THAT(result.output, HasSubstr("\"listened\":[\"127.0.0.1:"));
}

// Measurements for the report (not a test; run with --gtest_also_run_disabled_tests): start/stop
// cycles of sample_child with ready_fd and with listen, interleaved, and the filter's cost per
// system call in the server.
TEST(FaultListen, DISABLED_Measure) {
  using Clock = std::chrono::steady_clock;
  const int cycles =
      std::getenv("PROCFIX_LISTEN_CYCLES") ? std::atoi(std::getenv("PROCFIX_LISTEN_CYCLES")) : 200;
  std::vector<double> ready_fd, listen;
  for (int i = 0; i < cycles; ++i) {
    for (bool use_listen : {false, true}) {
      ServerOptions options = procfix::testing::sample_child(
          {"--listen=127.0.0.1:0"}, use_listen ? Readiness::listen() : Readiness::ready_fd());
      const auto t0 = Clock::now();
      {
        Server server{std::move(options)};
        (void)server.stop();
      }
      const std::chrono::duration<double, std::micro> took = Clock::now() - t0;
      (use_listen ? listen : ready_fd).push_back(took.count());
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("cycle median us: ready_fd %.0f listen %.0f (%d interleaved cycles each)\n",
              median(ready_fd), median(listen), cycles);
  const std::string file = temp_socket_path("getppid");
  const std::string calls = "--getppid=1000000:" + file;
  auto read_ns = [&] {
    std::ifstream in{file};
    double ns = 0;
    in >> ns;
    return ns;
  };
  std::vector<double> plain, filtered;
  for (int i = 0; i < 5; ++i) {
    procfix::testing::run_command({fault_child("listen_child"), calls, "--exit=0", "127.0.0.1:0"});
    plain.push_back(read_ns());
    {
      Server server{listen_child({calls, "127.0.0.1:0"})};
      (void)server.stop();
    }
    filtered.push_back(read_ns());
  }
  std::filesystem::remove(file);
  std::printf("getppid ns/call median of 5 x 1e6: unfiltered %.1f filtered %.1f\n", median(plain),
              median(filtered));
}

// Run by the two tests below under deny_syscall: the start must fail with the cause named.
TEST(FaultListen, DISABLED_StartUnderDeniedSyscall) {
  const StartError error = start_failure(listen_child({"127.0.0.1:0"}));
  std::printf("START ERROR: %s\n", error.what());
}

std::string run_under_denied(const std::string& syscall_name) {
  const procfix::testing::CommandResult result = procfix::testing::run_command(
      {fault_child("deny_syscall"), syscall_name, std::filesystem::read_symlink("/proc/self/exe"),
       "--gtest_also_run_disabled_tests",
       "--gtest_filter=FaultListen.DISABLED_StartUnderDeniedSyscall"});
  EXPECT_EQ(result.status, 0) << result.output;
  return result.output;
}

// Issue 13 item 2: where seccomp user notification is forbidden (a container's profile), the
// error names seccomp.
TEST(FaultListen, SeccompRefusedFailsNamingTheCause) {
  EXPECT_THAT(run_under_denied("seccomp"),
              HasSubstr("installing a seccomp user-notification filter "
                        "(SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux >= 5.0) failed"));
}

// Issue 13 item 2: where pidfd_getfd is forbidden or missing, the error names pidfd_getfd.
TEST(FaultListen, PidfdGetfdRefusedFailsNamingTheCause) {
  EXPECT_THAT(run_under_denied("pidfd_getfd"), HasSubstr("pidfd_getfd failed"));
}

}  // namespace
