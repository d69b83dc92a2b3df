// procfix/helpers/worker_group.hpp. Every wait is event-driven (stop tokens, latches, the log
// hook); the only durations are shutdown deadlines under test and hang-catching bounds.
#include "procfix/helpers/worker_group.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using procfix::Failure;
using procfix::GroupResult;
using procfix::StopCause;
using procfix::WorkerGroup;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Blocks until `token` is stopped. Event-driven.
void wait_for_stop(const std::stop_token& token) {
  std::mutex mutex;
  std::condition_variable_any stopped;
  std::unique_lock lock{mutex};
  stopped.wait(lock, token, [] { return false; });
}

// A thread-safe record of events, in order.
class Journal {
 public:
  void add(std::string entry) {
    const std::lock_guard lock{mutex_};
    entries_.push_back(std::move(entry));
  }
  std::vector<std::string> entries() const {
    const std::lock_guard lock{mutex_};
    return entries_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> entries_;
};

TEST(WorkerGroup, FirstFailureStopsTheOthersAndIsNamed) {
  WorkerGroup group;
  std::promise<void> others_saw_stop;
  group.run("listener", [&](std::stop_token token) {
    wait_for_stop(token);
    others_saw_stop.set_value();
  });
  group.run("database", [](std::stop_token) { throw std::runtime_error("connection lost"); });
  const GroupResult result = group.wait();
  EXPECT_FALSE(result.ok());
  ASSERT_NE(result.first_failure(), nullptr);
  EXPECT_EQ(result.first_failure()->name, "database");
  EXPECT_EQ(result.first_failure()->kind, Failure::Kind::exception);
  EXPECT_THAT(result.describe(),
              HasSubstr("worker 'database' threw std::runtime_error: connection lost"));
  EXPECT_EQ(result.stop_cause.kind, StopCause::Kind::worker_failed);
  EXPECT_EQ(result.stop_cause.worker, "database");
  EXPECT_EQ(result.failures.size(), 1u);
  EXPECT_EQ(others_saw_stop.get_future().wait_for(0s), std::future_status::ready);
}

TEST(WorkerGroup, AnErrorCodeIsAFailure) {
  WorkerGroup group;
  group.run("resolver",
            [](std::stop_token) { return std::make_error_code(std::errc::connection_refused); });
  const GroupResult result = group.wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.first_failure()->kind, Failure::Kind::error_code);
  EXPECT_EQ(result.first_failure()->code, std::errc::connection_refused);
  EXPECT_THAT(result.first_failure()->message, HasSubstr("worker 'resolver' failed with error"));
}

TEST(WorkerGroup, ASuccessfulErrorCodeIsNoFailure) {
  WorkerGroup group;
  group.run("quiet", [] { return std::error_code{}; });
  EXPECT_TRUE(group.wait().ok());
}

TEST(WorkerGroup, LaterFailuresAreKeptInOrder) {
  WorkerGroup group;
  std::latch both_started{1};
  group.run("first", [&](std::stop_token) {
    both_started.wait();
    throw std::runtime_error("one");
  });
  group.run("second", [](std::stop_token token) {
    wait_for_stop(token);
    throw std::logic_error("two");
  });
  both_started.count_down();
  const GroupResult result = group.wait();
  ASSERT_EQ(result.failures.size(), 2u);
  EXPECT_EQ(result.failures[0].name, "first");
  EXPECT_EQ(result.failures[1].name, "second");
  EXPECT_THAT(result.describe(), HasSubstr("then: worker 'second' threw std::logic_error: two"));
}

TEST(WorkerGroup, AReturningWorkerStopsTheOthers) {
  WorkerGroup group;
  group.run("waiter", [](std::stop_token token) { wait_for_stop(token); });
  group.run("oneshot", [] {});
  const GroupResult result = group.wait();
  EXPECT_TRUE(result.ok()) << result.describe();
  EXPECT_EQ(result.stop_cause.kind, StopCause::Kind::worker_returned);
  EXPECT_EQ(result.stop_cause.worker, "oneshot");
}

TEST(WorkerGroup, AnEphemeralWorkerReturnsWithoutStoppingTheGroup) {
  std::promise<void> ephemeral_ended;
  WorkerGroup group{{.log = [&](std::string_view line) {
    if (line == "worker 'migration' ended") ephemeral_ended.set_value();
  }}};
  group.run("server", [](std::stop_token token) { wait_for_stop(token); });
  group.run("migration", [] {}, {.ephemeral = true});
  ASSERT_EQ(ephemeral_ended.get_future().wait_for(60s), std::future_status::ready);
  EXPECT_FALSE(group.stop_requested());
  group.request_stop();
  const GroupResult result = group.wait();
  EXPECT_TRUE(result.ok()) << result.describe();
  EXPECT_EQ(result.stop_cause.kind, StopCause::Kind::request_stop);
}

TEST(WorkerGroup, AFailingEphemeralWorkerStillStopsTheGroup) {
  WorkerGroup group;
  group.run("server", [](std::stop_token token) { wait_for_stop(token); });
  group.run("migration", [] { throw std::runtime_error("bad schema"); }, {.ephemeral = true});
  const GroupResult result = group.wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.first_failure()->name, "migration");
}

TEST(WorkerGroup, CapturesExceptionsNotDerivedFromStdException) {
  WorkerGroup group;
  group.run("odd", [] { throw 42; });
  const GroupResult result = group.wait();
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.first_failure()->message,
              HasSubstr("worker 'odd' threw an exception not derived from std::exception"));
  ASSERT_TRUE(result.first_failure()->exception);
  EXPECT_THROW(std::rethrow_exception(result.first_failure()->exception), int);
}

TEST(WorkerGroup, TheDeadlineNamesExactlyTheOverrunningWorkers) {
  std::latch release{1};
  std::latch stuck_done{2};
  {
    WorkerGroup group{{.shutdown_deadline = 200ms}};
    group.run("polite", [](std::stop_token token) { wait_for_stop(token); });
    for (const char* name : {"stuck-a", "stuck-b"}) {
      group.run(name, [&](std::stop_token) {
        release.wait();  // ignores the stop token
        stuck_done.count_down();
      });
    }
    group.run("also-polite", [](std::stop_token token) { wait_for_stop(token); });
    group.add_cleanup("never", [] { ADD_FAILURE() << "cleanup ran while workers were stuck"; });
    group.request_stop();
    const GroupResult result = group.wait();
    ASSERT_FALSE(result.ok());
    ASSERT_EQ(result.failures.size(), 1u);
    const Failure& timeout = result.failures.front();
    EXPECT_EQ(timeout.kind, Failure::Kind::shutdown_timeout);
    EXPECT_THAT(timeout.workers, ElementsAre("stuck-a", "stuck-b"));
    EXPECT_THAT(timeout.message, HasSubstr("shutdown deadline of 200 ms passed with 2 workers "
                                           "still running: 'stuck-a', 'stuck-b'"));
    EXPECT_THAT(result.skipped_cleanups, ElementsAre("never"));
  }
  release.count_down();  // the detached threads end now
  stuck_done.wait();
}

TEST(WorkerGroup, CleanupsRunOnceInReverseOrderAfterAllWorkers) {
  Journal journal;
  WorkerGroup group;
  group.add_cleanup("first", [&] { journal.add("cleanup first"); });
  group.run("a", [&](std::stop_token token) {
    wait_for_stop(token);
    journal.add("worker a ended");
  });
  group.add_cleanup("second", [&] {
    journal.add("cleanup second");
    throw std::runtime_error("disk full");
  });
  group.run("b", [&](std::stop_token token) {
    wait_for_stop(token);
    journal.add("worker b ended");
  });
  group.add_cleanup("third", [&] { journal.add("cleanup third"); });
  group.request_stop();
  const GroupResult result = group.wait();
  const GroupResult again = group.wait();

  const auto entries = journal.entries();
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_THAT(std::vector(entries.begin() + 2, entries.end()),
              ElementsAre("cleanup third", "cleanup second", "cleanup first"));
  ASSERT_EQ(result.failures.size(), 1u);
  EXPECT_EQ(result.failures[0].kind, Failure::Kind::cleanup_exception);
  EXPECT_THAT(result.describe(), HasSubstr("cleanup 'second' threw std::runtime_error: disk full"));
  EXPECT_EQ(again.failures.size(), 1u);
  EXPECT_EQ(journal.entries().size(), 5u);  // nothing ran twice
}

TEST(WorkerGroup, WaitFromTwoThreadsReturnsTheSameResult) {
  WorkerGroup group;
  std::latch both_waiting{2};
  group.run("failing", [&](std::stop_token token) {
    wait_for_stop(token);
    throw std::runtime_error("late");
  });
  GroupResult first;
  GroupResult second;
  std::thread one{[&] {
    both_waiting.count_down();
    first = group.wait();
  }};
  std::thread two{[&] {
    both_waiting.count_down();
    second = group.wait();
  }};
  both_waiting.wait();
  group.request_stop();
  one.join();
  two.join();
  EXPECT_EQ(first.describe(), second.describe());
  ASSERT_EQ(first.failures.size(), 1u);
  EXPECT_EQ(first.failures[0].exception, second.failures[0].exception);
}

TEST(WorkerGroup, RunAfterStopBeganThrows) {
  WorkerGroup group;
  group.request_stop();
  try {
    group.run("late", [] {});
    FAIL() << "no WorkerGroupError";
  } catch (const procfix::WorkerGroupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot start worker 'late': the group is stopping"));
  }
  EXPECT_TRUE(group.wait().ok());
}

TEST(WorkerGroup, RunAfterWaitFinishedThrows) {
  WorkerGroup group;
  EXPECT_TRUE(group.wait().ok());  // no workers: returns at once
  EXPECT_THROW(group.run("late", [] {}), procfix::WorkerGroupError);
  EXPECT_THROW(group.add_cleanup("late", [] {}), procfix::WorkerGroupError);
}

TEST(WorkerGroup, RejectsEmptyAndDuplicateNames) {
  WorkerGroup group;
  EXPECT_THROW(group.run("", [] {}), procfix::WorkerGroupError);
  group.run("same", [](std::stop_token token) { wait_for_stop(token); });
  try {
    group.run("same", [] {});
    FAIL() << "no WorkerGroupError";
  } catch (const procfix::WorkerGroupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'same' was already started"));
  }
  group.request_stop();
  EXPECT_TRUE(group.wait().ok());
}

TEST(WorkerGroup, RejectsANegativeDeadlineNamingTheField) {
  try {
    WorkerGroup group{{.shutdown_deadline = -1ms}};
    FAIL() << "no WorkerGroupError";
  } catch (const procfix::WorkerGroupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("WorkerGroupOptions::shutdown_deadline"));
  }
}

TEST(WorkerGroup, FollowsAnExternalStopToken) {
  std::stop_source external;
  WorkerGroup group{external.get_token()};
  group.run("server", [](std::stop_token token) { wait_for_stop(token); });
  external.request_stop();
  const GroupResult result = group.wait();
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.stop_cause.kind, StopCause::Kind::external_token);
}

TEST(WorkerGroup, StartsStoppedWhenTheExternalTokenAlreadyIs) {
  std::stop_source external;
  external.request_stop();
  WorkerGroup group{external.get_token()};
  EXPECT_TRUE(group.stop_requested());
  EXPECT_THROW(group.run("late", [] {}), procfix::WorkerGroupError);
}

TEST(WorkerGroup, WaitFromInsideAWorkerThrows) {
  WorkerGroup group;
  group.run("selfish", [&] { (void)group.wait(); });
  const GroupResult result = group.wait();
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.first_failure()->message, HasSubstr("would wait for itself"));
}

TEST(WorkerGroup, DestructorWithoutWaitStopsAndJoins) {
  std::atomic<bool> ended{false};
  {
    WorkerGroup group;
    group.run("server", [&](std::stop_token token) {
      wait_for_stop(token);
      ended = true;
    });
  }
  EXPECT_TRUE(ended);
}

TEST(WorkerGroup, LogHookReportsStartsFailuresAndTheStopCause) {
  Journal journal;
  {
    WorkerGroup group{{.log = [&](std::string_view line) { journal.add(std::string{line}); }}};
    group.run("boom", [] { throw std::runtime_error("x"); });
    (void)group.wait();
  }
  EXPECT_THAT(
      journal.entries(),
      ::testing::IsSupersetOf({"worker 'boom' started", "worker 'boom' threw std::runtime_error: x",
                               "stop requested because worker 'boom' failed"}));
}

}  // namespace
