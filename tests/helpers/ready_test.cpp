// procfix/helpers/ready.hpp and address.hpp, in-process: real pipes and unix datagram sockets,
// environment variables set in this process, no spawning.
#include "procfix/helpers/ready.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "child_process.hpp"
#include "procfix/helpers/address.hpp"
#include "ready_internal.hpp"

namespace {

using procfix::testing::Fd;
using procfix::testing::NotifyListener;
using ::testing::HasSubstr;

struct Pipe {
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    read_end = Fd{fds[0]};
    write_end = fds[1];
  }
  Fd read_end;
  int write_end = -1;  // handed over to the helpers through PROCFIX_READY_FD
};

class Ready : public ::testing::Test {
 protected:
  void SetUp() override { clean(); }
  void TearDown() override { clean(); }
  static void clean() {
    procfix::detail::reset_ready_state_for_testing();
    ::unsetenv("PROCFIX_READY_FD");
    ::unsetenv("NOTIFY_SOCKET");
  }
  static void set_ready_fd(int fd) { ::setenv("PROCFIX_READY_FD", std::to_string(fd).c_str(), 1); }
  static bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }
};

TEST_F(Ready, WritesOneJsonLineAndClosesTheFd) {
  Pipe pipe;
  set_ready_fd(pipe.write_end);
  const auto outcome =
      procfix::notify_ready({.address = "127.0.0.1:4242", .extra = {{"pid", 17}, {"name", "x"}}});
  EXPECT_TRUE(outcome.wrote_ready_fd);
  EXPECT_FALSE(outcome.notified_socket);
  EXPECT_FALSE(is_open(pipe.write_end));
  const std::string all = procfix::testing::read_all(pipe.read_end.get());
  EXPECT_EQ(all, R"({"address":"127.0.0.1:4242","name":"x","pid":17})"
                 "\n");
}

TEST_F(Ready, TakeMarksTheFdCloseOnExecAndUnsetsTheVariable) {
  Pipe pipe;
  ASSERT_EQ(::fcntl(pipe.write_end, F_SETFD, 0), 0);  // as a spawner installs it
  set_ready_fd(pipe.write_end);
  procfix::take_ready_channels();
  EXPECT_EQ(std::getenv("PROCFIX_READY_FD"), nullptr);
  EXPECT_EQ(::fcntl(pipe.write_end, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(procfix::detail::ready_fd(), pipe.write_end);
  procfix::take_ready_channels();  // idempotent
  EXPECT_EQ(procfix::detail::ready_fd(), pipe.write_end);
}

TEST_F(Ready, RejectsAVariableThatIsNotANumber) {
  ::setenv("PROCFIX_READY_FD", "12abc", 1);
  try {
    procfix::take_ready_channels();
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("PROCFIX_READY_FD=\"12abc\""));
    EXPECT_THAT(e.what(), HasSubstr("not a decimal file descriptor"));
  }
  EXPECT_STREQ(std::getenv("PROCFIX_READY_FD"), "12abc");  // nothing changed on error
}

TEST_F(Ready, AnEmptyVariableMeansNoReadyFd) {
  ::setenv("PROCFIX_READY_FD", "", 1);
  EXPECT_FALSE(procfix::notify_ready({.address = "127.0.0.1:1"}).wrote_ready_fd);
  EXPECT_EQ(std::getenv("PROCFIX_READY_FD"), nullptr);
}

TEST_F(Ready, RejectsAStandardStream) {
  ::setenv("PROCFIX_READY_FD", "1", 1);
  EXPECT_THROW(procfix::take_ready_channels(), procfix::ReadyError);
  try {
    procfix::take_ready_channels();
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("PROCFIX_READY_FD=\"1\""));
    EXPECT_THAT(e.what(), HasSubstr("3 or higher"));
  }
}

TEST_F(Ready, RejectsAClosedFd) {
  int closed = -1;
  {
    Pipe pipe;
    closed = pipe.write_end;
    ::close(pipe.write_end);
  }
  set_ready_fd(closed);
  try {
    (void)procfix::notify_ready({.address = "127.0.0.1:1"});  // takes the channels implicitly
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("PROCFIX_READY_FD=\"" + std::to_string(closed) + "\""));
    EXPECT_THAT(e.what(), HasSubstr("not open"));
  }
}

TEST_F(Ready, RejectsAReadOnlyFd) {
  Pipe pipe;
  set_ready_fd(pipe.read_end.get());
  try {
    procfix::take_ready_channels();
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("reading only"));
  }
  ::close(pipe.write_end);
}

TEST_F(Ready, SecondCallThrowsAlreadyNotified) {
  Pipe pipe;
  set_ready_fd(pipe.write_end);
  (void)procfix::notify_ready({.address = "127.0.0.1:1"});
  try {
    (void)procfix::notify_ready({.address = "127.0.0.1:1"});
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("already notified"));
  }
}

TEST_F(Ready, WithoutChannelsItIsANoOp) {
  const auto outcome = procfix::notify_ready({.address = "127.0.0.1:1"});
  EXPECT_FALSE(outcome.wrote_ready_fd);
  EXPECT_FALSE(outcome.notified_socket);
  EXPECT_NO_THROW(procfix::notify_status("fine"));
  EXPECT_NO_THROW(procfix::notify_stopping());
}

TEST_F(Ready, AGoneReaderGivesEpipeNotSigpipe) {
  Pipe pipe;
  pipe.read_end.reset();
  set_ready_fd(pipe.write_end);
  try {
    (void)procfix::notify_ready({.address = "127.0.0.1:1"});
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("EPIPE"));
  }
  // Still alive; no SIGPIPE left pending, and the signal mask is as before.
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  EXPECT_EQ(sigismember(&mask, SIGPIPE), 0);
  EXPECT_FALSE(is_open(pipe.write_end));
}

TEST_F(Ready, ACallerBlockedSigpipeStaysPending) {
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr), 0);
  ::raise(SIGPIPE);  // the caller's own, pending
  Pipe pipe;
  pipe.read_end.reset();
  set_ready_fd(pipe.write_end);
  EXPECT_THROW((void)procfix::notify_ready({.address = "127.0.0.1:1"}), procfix::ReadyError);
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 1);
  const timespec zero{0, 0};
  EXPECT_EQ(::sigtimedwait(&sigpipe, nullptr, &zero), SIGPIPE);
  ::pthread_sigmask(SIG_UNBLOCK, &sigpipe, nullptr);
}

TEST_F(Ready, RejectsAnOversizedMessageBeforeWriting) {
  Pipe pipe;
  set_ready_fd(pipe.write_end);
  try {
    (void)procfix::notify_ready(
        {.address = "127.0.0.1:1", .extra = {{"pad", std::string(70000, 'x')}}});
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("at most 65536"));
  }
  EXPECT_TRUE(is_open(pipe.write_end));  // nothing written, a smaller message may follow
  ASSERT_EQ(::fcntl(pipe.read_end.get(), F_SETFL, O_NONBLOCK), 0);
  char byte;
  EXPECT_EQ(::read(pipe.read_end.get(), &byte, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_TRUE(procfix::notify_ready({.address = "127.0.0.1:1"}).wrote_ready_fd);
}

// A line of exactly 64 KiB through a 4 KiB pipe: the write loops over partial writes.
TEST_F(Ready, WritesAMaximalLineThroughASmallPipe) {
  Pipe pipe;
  ASSERT_GT(::fcntl(pipe.write_end, F_SETPIPE_SZ, 4096), 0);
  set_ready_fd(pipe.write_end);
  const std::string skeleton = R"({"address":"127.0.0.1:1","pad":""})";
  const std::string pad(procfix::kMaxReadyLineBytes - skeleton.size() - 1, 'y');
  std::string received;
  std::thread reader{[&] { received = procfix::testing::read_all(pipe.read_end.get()); }};
  const auto outcome = procfix::notify_ready({.address = "127.0.0.1:1", .extra = {{"pad", pad}}});
  reader.join();
  EXPECT_TRUE(outcome.wrote_ready_fd);
  EXPECT_EQ(received.size(), procfix::kMaxReadyLineBytes);
  EXPECT_EQ(received.back(), '\n');
  EXPECT_EQ(nlohmann::json::parse(received).at("pad"), pad);
}

TEST_F(Ready, RejectsExtraThatIsNotAnObject) {
  Pipe pipe;
  set_ready_fd(pipe.write_end);
  try {
    (void)procfix::notify_ready({.address = "127.0.0.1:1", .extra = nlohmann::json::array({1})});
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("ReadyMessage::extra must be a JSON object"));
  }
}

TEST_F(Ready, RejectsAnAddressGivenTwice) {
  Pipe pipe;
  set_ready_fd(pipe.write_end);
  EXPECT_THROW(
      (void)procfix::notify_ready({.address = "127.0.0.1:1", .extra = {{"address", "other"}}}),
      procfix::ReadyError);
}

TEST_F(Ready, AnEmptyAddressWritesNoAddressField) {
  Pipe pipe;
  set_ready_fd(pipe.write_end);
  (void)procfix::notify_ready({.extra = {{"pid", 1}}});
  EXPECT_EQ(procfix::testing::read_all(pipe.read_end.get()), "{\"pid\":1}\n");
}

TEST_F(Ready, NotifySocketPathGetsReadyStatusAndStopping) {
  NotifyListener listener{/*abstract=*/false};
  ::setenv("NOTIFY_SOCKET", listener.name().c_str(), 1);
  procfix::take_ready_channels();
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  const auto outcome = procfix::notify_ready({.address = "127.0.0.1:1", .status = "serving"});
  EXPECT_FALSE(outcome.wrote_ready_fd);
  EXPECT_TRUE(outcome.notified_socket);
  EXPECT_EQ(listener.receive(), "READY=1\nSTATUS=serving");
  procfix::notify_status("draining 3");
  EXPECT_EQ(listener.receive(), "STATUS=draining 3");
  procfix::notify_stopping();
  EXPECT_EQ(listener.receive(), "STOPPING=1");
}

TEST_F(Ready, NotifySocketAbstractNameAndReadyFdTogether) {
  NotifyListener listener{/*abstract=*/true};
  Pipe pipe;
  set_ready_fd(pipe.write_end);
  ::setenv("NOTIFY_SOCKET", listener.name().c_str(), 1);
  const auto outcome = procfix::notify_ready({.address = "[::1]:80"});
  EXPECT_TRUE(outcome.wrote_ready_fd);
  EXPECT_TRUE(outcome.notified_socket);
  EXPECT_EQ(listener.receive(), "READY=1");
  EXPECT_EQ(procfix::testing::read_all(pipe.read_end.get()), "{\"address\":\"[::1]:80\"}\n");
}

TEST_F(Ready, NotifySocketWithoutListenerThrowsNamingIt) {
  ::setenv("NOTIFY_SOCKET", "@procfix-nobody-listens-here", 1);
  try {
    (void)procfix::notify_ready({});
    FAIL() << "no ReadyError";
  } catch (const procfix::ReadyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("NOTIFY_SOCKET \"@procfix-nobody-listens-here\""));
  }
}

TEST_F(Ready, RejectsARelativeNotifySocket) {
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_THROW(procfix::take_ready_channels(), procfix::ReadyError);
}

TEST_F(Ready, StatusTextMustNotContainANewline) {
  EXPECT_THROW(procfix::notify_status("a\nREADY=1"), procfix::ReadyError);
}

TEST(Address, FormatsIpv4AndIpv6Endpoints) {
  namespace ip = boost::asio::ip;
  EXPECT_EQ(procfix::to_address(ip::tcp::endpoint{ip::make_address("127.0.0.1"), 43121}),
            "127.0.0.1:43121");
  EXPECT_EQ(procfix::to_address(ip::tcp::endpoint{ip::make_address("::1"), 43121}), "[::1]:43121");
}

TEST(Address, FormatsUnixPathsAndAbstractNames) {
  using boost::asio::local::stream_protocol;
  EXPECT_EQ(procfix::to_address(stream_protocol::endpoint{"/run/x.sock"}), "/run/x.sock");
  EXPECT_EQ(procfix::to_address(stream_protocol::endpoint{std::string{"\0abc", 4}}), "@abc");
}

}  // namespace
