// Real, unmodified Debian servers started through the fixtures, talked to with their real
// clients: PostgreSQL (sd_notify, run as an unprivileged user), Redis (sd_notify and an output
// line, unix socket endpoint) and systemd-socket-proxyd (socket activation). No polling, no fixed
// ports: every endpoint is a private unix socket or a port the kernel picked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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
