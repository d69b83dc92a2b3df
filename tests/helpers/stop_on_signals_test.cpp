// procfix/helpers/stop_on_signals.hpp, in this process. (Real signals sent to a separate server
// process are in sample_child_test.cpp.) Each test raises signals only while a StopOnSignals
// handles them.
#include "procfix/helpers/stop_on_signals.hpp"

#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include <boost/asio/io_context.hpp>

#include "procfix/helpers/worker_group.hpp"

namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class StopOnSignalsTest : public ::testing::TestWithParam<int> {};

TEST_P(StopOnSignalsTest, ARaisedSignalRequestsStop) {
  procfix::StopOnSignals stop;  // private thread
  std::promise<void> stopped;
  std::stop_callback on_stop{stop.token(), [&] { stopped.set_value(); }};
  EXPECT_FALSE(stop.signal().has_value());
  ASSERT_EQ(::raise(GetParam()), 0);
  ASSERT_EQ(stopped.get_future().wait_for(60s), std::future_status::ready);
  EXPECT_EQ(stop.signal(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(EachDefaultSignal, StopOnSignalsTest,
                         ::testing::Values(SIGINT, SIGTERM, SIGQUIT), [](const auto& param_info) {
                           return std::string{sigabbrev_np(param_info.param)};
                         });

TEST(StopOnSignals, ASignalBeforeAnybodyWaitsIsNotLost) {
  boost::asio::io_context io;
  procfix::StopOnSignals stop{io};
  ASSERT_EQ(::raise(SIGTERM), 0);  // handled by Asio's handler: queued, nothing runs yet
  EXPECT_FALSE(stop.token().stop_requested());
  std::stop_callback stop_io{stop.token(), [&] { io.stop(); }};
  io.run_for(60s);  // now the queued signal is processed; the callback ends run_for at once
  EXPECT_TRUE(stop.token().stop_requested());
  EXPECT_EQ(stop.signal(), SIGTERM);
}

// The signal arrives before the WorkerGroup exists and before anybody calls wait(): the group
// starts stopped and wait() returns at once, naming the followed token.
TEST(StopOnSignals, ASignalBeforeTheGroupWaitsStopsIt) {
  procfix::StopOnSignals stop;
  std::promise<void> stopped;
  std::stop_callback on_stop{stop.token(), [&] { stopped.set_value(); }};
  ASSERT_EQ(::raise(SIGINT), 0);
  ASSERT_EQ(stopped.get_future().wait_for(60s), std::future_status::ready);
  procfix::WorkerGroup group{stop.token()};
  const procfix::GroupResult result = group.wait();
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.stop_cause.kind, procfix::StopCause::Kind::external_token);
}

TEST(StopOnSignals, LaterSignalsAreConsumedWithoutForceExit) {
  boost::asio::io_context io;
  procfix::StopOnSignals stop{io, {.signals = {SIGUSR1, SIGUSR2}}};
  ::raise(SIGUSR2);
  ::raise(SIGUSR1);  // a second signal: consumed, the process lives on
  std::stop_callback stop_io{stop.token(), [&] { io.stop(); }};
  io.run_for(60s);
  io.restart();
  io.poll();  // handles the second signal too
  EXPECT_EQ(stop.signal(), SIGUSR2);
}

TEST(StopOnSignals, ASecondInstanceThrowsNamingTheReason) {
  procfix::StopOnSignals first;
  try {
    procfix::StopOnSignals second;
    FAIL() << "no StopOnSignalsError";
  } catch (const procfix::StopOnSignalsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("a StopOnSignals already exists in this process"));
  }
}

TEST(StopOnSignals, AnotherInstanceMayFollowTheFirst) {
  { procfix::StopOnSignals first; }
  EXPECT_NO_THROW(procfix::StopOnSignals second);
}

TEST(StopOnSignals, RejectsBadOptionsNamingTheField) {
  using Options = procfix::StopOnSignalsOptions;
  for (const Options& options :
       {Options{.signals = {}}, Options{.signals = {SIGKILL}}, Options{.signals = {SIGINT, SIGINT}},
        Options{.forced_exit_status = 256}}) {
    try {
      procfix::StopOnSignals stop{options};
      ADD_FAILURE() << "no StopOnSignalsError";
    } catch (const procfix::StopOnSignalsError& e) {
      EXPECT_THAT(e.what(), HasSubstr("StopOnSignalsOptions::"));
    }
  }
  EXPECT_NO_THROW(procfix::StopOnSignals stop);  // the failures released the instance slot
}

TEST(StopOnSignals, InstallsRestartingHandlersAndRestoresTheDefaultAfterwards) {
  {
    procfix::StopOnSignals stop;
    struct sigaction action {};
    ASSERT_EQ(::sigaction(SIGTERM, nullptr, &action), 0);
    EXPECT_NE(action.sa_handler, SIG_DFL);
    EXPECT_NE(action.sa_flags & SA_RESTART, 0);
    sigset_t mask;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    EXPECT_EQ(sigismember(&mask, SIGTERM), 0);  // nothing blocked: children inherit no mask
  }
  struct sigaction action {};
  ASSERT_EQ(::sigaction(SIGTERM, nullptr, &action), 0);
  EXPECT_EQ(action.sa_handler, SIG_DFL);
}

TEST(StopOnSignals, RequestStopWithoutASignal) {
  procfix::StopOnSignals stop;
  stop.request_stop();
  EXPECT_TRUE(stop.token().stop_requested());
  EXPECT_FALSE(stop.signal().has_value());
}

}  // namespace
