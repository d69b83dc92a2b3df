// Real, unmodified Debian servers started through the fixtures, talked to with their real
// clients: PostgreSQL (sd_notify, run as an unprivileged user), Redis (sd_notify and an output
// line, unix socket endpoint), systemd-socket-proxyd (socket activation), Xvfb and dbus-daemon
// (a line on an inherited fd: -displayfd, --print-address). No polling, no fixed
// ports: every endpoint is a private unix socket or a port the kernel picked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "procfix/fixtures/server.hpp"
#include "support/command.hpp"
#include "support/identity.hpp"

namespace {

using namespace std::chrono_literals;
using procfix::Readiness;
using procfix::Server;
using procfix::testing::run_command;
using ::testing::HasSubstr;

constexpr const char* kPostgresBin = "/usr/lib/postgresql/15/bin";
constexpr const char* kTestUser = "procfix-test";  // created by tools/setup

// A private temporary directory, removed at the end; optionally owned by `owner`.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const std::string& owner = {}) {
    std::string pattern = (std::filesystem::temp_directory_path() / "procfix-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error{"mkdtemp"};
    path_ = pattern;
    if (!owner.empty()) {
      const passwd* user = ::getpwnam(owner.c_str());
      if (user == nullptr || ::chown(path_.c_str(), user->pw_uid, user->pw_gid) != 0) {
        throw std::runtime_error{"cannot give " + path_.string() + " to " + owner};
      }
    }
  }
  ~TemporaryDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

bool have_user(const char* name) {
  return ::getpwnam(name) != nullptr;
}

// redis-server on a private unix socket only (no TCP port), nothing persisted.
procfix::ServerOptions redis_options(const TemporaryDirectory& dir, const std::string& socket,
                                     Readiness readiness, bool supervised_by_systemd) {
  std::vector<std::string> args = {
      "--port", "0",     "--unixsocket",     socket, "--save", "", "--appendonly",
      "no",     "--dir", dir.path().string()};
  if (supervised_by_systemd) args.insert(args.end(), {"--supervised", "systemd"});
  return {.executable = "redis-server",
          .args = std::move(args),
          .ready_timeout = 30s,
          .readiness = std::move(readiness)};
}

TEST(PostgreSQL, StartsReadyViaNotifySocketAnswersSelectOneAndStopsCleanly) {
  if (const std::string why = procfix::testing::why_users_cannot_be_switched(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  if (!have_user(kTestUser))
    GTEST_SKIP() << "needs the user " << kTestUser << " (tools/setup creates it)";
  TemporaryDirectory dir{kTestUser};
  const std::string data = (dir.path() / "data").string();
  const auto initdb =
      run_command({"runuser", "-u", kTestUser, "--", std::string{kPostgresBin} + "/initdb", "-D",
                   data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"});
  ASSERT_EQ(initdb.status, 0) << initdb.output;

  Server postgres{{
      .executable = std::string{kPostgresBin} + "/postgres",
      .args = {"-D", data, "-k", dir.path().string(), "-c", "listen_addresses=", "-c", "fsync=off"},
      .name = "postgres",
      .ready_timeout = 60s,
      .stop_signal = SIGINT,  // "fast shutdown"
      .stop_grace = 30s,
      .readiness = Readiness::notify_socket(dir.path().string()),
      .user = kTestUser,
  }};
  EXPECT_TRUE(postgres.endpoint().is_unix_socket());
  const auto select = run_command({"psql", "-h", postgres.endpoint().host(), "-U", "postgres", "-d",
                                   "postgres", "-tAc", "SELECT 1"});
  EXPECT_EQ(select.status, 0) << select.output;
  EXPECT_EQ(select.output, "1\n");
  const procfix::StopReport report = postgres.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(Redis, StartsReadyViaNotifySocketOnAUnixSocketAndAnswersPing) {
  TemporaryDirectory dir;
  const std::string socket = (dir.path() / "redis.sock").string();
  Server redis{redis_options(dir, socket, Readiness::notify_socket(socket), true)};
  const auto ping = run_command({"redis-cli", "-s", redis.endpoint().host(), "PING"});
  EXPECT_EQ(ping.output, "PONG\n");
  const procfix::StopReport report = redis.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(Redis, StartsReadyAtItsLogLine) {
  TemporaryDirectory dir;
  const std::string socket = (dir.path() / "redis.sock").string();
  // Redis 7.0 with only a unix socket logs "... ready to accept connections at <path>": the
  // capture group gives the endpoint.
  Server redis{redis_options(
      dir, socket, Readiness::output_line(R"(ready to accept connections at (\S+))"), false)};
  EXPECT_EQ(redis.endpoint().address(), socket);
  const auto ping = run_command({"redis-cli", "-s", redis.endpoint().host(), "PING"});
  EXPECT_EQ(ping.output, "PONG\n");
  EXPECT_TRUE(redis.stop().ok());
}

// systemd-socket-proxyd accepts only a socket-activated listener (it checks LISTEN_PID): procfix
// binds 127.0.0.1:0 and passes it; the proxy forwards to Redis's unix socket.
TEST(SocketActivatedProxy, ForwardsTcpToRedis) {
  const char* proxy = "/lib/systemd/systemd-socket-proxyd";
  if (::access(proxy, X_OK) != 0) GTEST_SKIP() << proxy << " is not installed";
  TemporaryDirectory dir;
  const std::string socket = (dir.path() / "redis.sock").string();
  Server redis{redis_options(dir, socket, Readiness::notify_socket(socket), true)};
  Server forwarder{{
      .executable = proxy,
      .args = {socket},
      .ready_timeout = 30s,
      .expected_exit = procfix::ExpectedExit::signal(SIGTERM),  // it has no SIGTERM handler
      .readiness = Readiness::socket_activation("127.0.0.1:0"),
  }};
  const auto ping = run_command({"redis-cli", "-h", forwarder.endpoint().host(), "-p",
                                 std::to_string(forwarder.endpoint().port()), "PING"});
  EXPECT_EQ(ping.output, "PONG\n");
  const procfix::StopReport proxy_report = forwarder.stop();
  EXPECT_TRUE(proxy_report.ok()) << proxy_report.describe();
  EXPECT_EQ(proxy_report.status, procfix::ExitStatus::killed_by(SIGTERM));
  EXPECT_TRUE(redis.stop().ok());
}

}  // namespace

namespace {

bool have_program(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

// Issue 13 item 6: Xvfb -displayfd 3 writes its display number when it accepts connections: the
// endpoint is that number (opaque), its socket exists while it runs and is gone after the stop.
TEST(Xvfb, StartsReadyAtItsDisplayFdLineAndRemovesItsSocketAtTheStop) {
  if (!have_program("/usr/bin/Xvfb")) GTEST_SKIP() << "Xvfb is not installed (tools/setup)";
  Server xvfb{{
      .executable = "/usr/bin/Xvfb",
      .args = {"-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "320x240x24"},
      .ready_timeout = 30s,
      .readiness = Readiness::fd_line(R"(^(\d+)$)", 3),
  }};
  EXPECT_EQ(xvfb.endpoint().kind(), procfix::Endpoint::Kind::opaque);
  const std::string display = ":" + xvfb.endpoint().address();
  const std::string socket = "/tmp/.X11-unix/X" + xvfb.endpoint().address();
  EXPECT_TRUE(std::filesystem::exists(socket)) << display;
  const procfix::StopReport report = xvfb.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_FALSE(std::filesystem::exists(socket)) << display;
}

// A display number no X server on this machine uses now (none has its lock file).
std::optional<int> free_display() {
  for (int n = 100 + ::getpid() % 400; n < 1000; ++n) {
    if (!std::filesystem::exists("/tmp/.X" + std::to_string(n) + "-lock") &&
        !std::filesystem::exists("/tmp/.X11-unix/X" + std::to_string(n))) {
      return n;
    }
  }
  return std::nullopt;
}

// Issue 13 item 6: a failed start stops Xvfb with SIGTERM first, so it removes its socket and
// lock file: nothing of display :N is left. Xvfb writes "N\n" once it listens and then closes the
// fd, so a pattern that does not match fails the start at that EOF, deterministically, with the
// socket in place.
TEST(Xvfb, FailedStartSendsSigtermSoXvfbRemovesItsSocket) {
  if (!have_program("/usr/bin/Xvfb")) GTEST_SKIP() << "Xvfb is not installed (tools/setup)";
  const std::optional<int> display = free_display();
  ASSERT_TRUE(display.has_value());
  const std::string number = std::to_string(*display);
  try {
    Server xvfb{{
        .executable = "/usr/bin/Xvfb",
        .args = {":" + number, "-displayfd", "3", "-nolisten", "tcp"},
        .ready_timeout = 30s,
        .readiness = Readiness::fd_line("^never this line$", 3),
    }};
    ADD_FAILURE() << "the start succeeded";
  } catch (const procfix::StartError& e) {
    EXPECT_EQ(e.reason(), procfix::StartError::Reason::closed_without_message);
    EXPECT_THAT(e.what(),
                HasSubstr("closed fd 3 before a line matching /^never this line$/ (" +
                          std::to_string(number.size() + 1) + " bytes, 1 complete lines"));
    EXPECT_THAT(e.what(), HasSubstr("it has been stopped with SIGTERM"));
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/.X11-unix/X" + number));
  EXPECT_FALSE(std::filesystem::exists("/tmp/.X" + number + "-lock"));
}

// Issue 13 item 6: dbus-daemon --print-address=3 writes its address ("unix:path=...,guid=...",
// opaque) once it listens; dbus-send talks to it there.
TEST(DbusDaemon, StartsReadyAtItsPrintedAddressAndAnswersListNames) {
  if (!have_program("/usr/bin/dbus-daemon") || !have_program("/usr/bin/dbus-send")) {
    GTEST_SKIP() << "dbus-daemon or dbus-send is not installed (tools/setup)";
  }
  TemporaryDirectory dir;
  Server bus{{
      .executable = "/usr/bin/dbus-daemon",
      .args = {"--session", "--nofork", "--nopidfile", "--print-address=3",
               "--address=unix:dir=" + dir.path().string()},
      .ready_timeout = 30s,
      .readiness = Readiness::fd_line(R"(^(unix:\S+)$)", 3),
  }};
  const std::string& address = bus.endpoint().address();
  EXPECT_EQ(bus.endpoint().kind(), procfix::Endpoint::Kind::opaque);
  EXPECT_THAT(address, HasSubstr("unix:path=" + dir.path().string()));
  const auto names =
      run_command({"dbus-send", "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
                   "/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames"});
  EXPECT_EQ(names.status, 0) << names.output;
  EXPECT_THAT(names.output, HasSubstr("\"org.freedesktop.DBus\""));
  const procfix::StopReport report = bus.stop();
  EXPECT_TRUE(report.ok()) << report.describe();
}

}  // namespace
