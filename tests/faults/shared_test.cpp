// The fault matrix for shared servers (issue 12, docs/shared-servers.md): `procfix-run --detach`
// keeps one server for a whole ctest run, `--stop` ends it, and procfix::add_global_server finds
// it through PROCFIX_SHARED_<NAME>. Driven as subprocesses, every wait bounded.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bounded_run.hpp"
#include "fault_support.hpp"
#include "procfix/fixtures/environment.hpp"

extern char** environ;

namespace {

using nlohmann::json;
using procfix::testing::fault_child;
using procfix::testing::processes_with;
using procfix::testing::survivors_with;
using procfix::testing::unique_token;
using ::testing::HasSubstr;

using procfix::testing::kHangMs;
using Ran = procfix::testing::BoundedRun;

// procfix-run ARGS, stdin /dev/null, stdout and stderr read until EOF (bounded_run.hpp).
Ran run(std::vector<std::string> args) {
  return procfix::testing::run_procfix_run(std::move(args));
}

// A fresh directory for state files, removed at the end.
class SharedStateDir : public procfix::testing::StateDir {
 public:
  SharedStateDir() : procfix::testing::StateDir{"procfix-shared-fault"} {}
};

json read_json(const std::string& path) {
  std::ifstream file{path};
  return json::parse(file, nullptr, false);
}

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// Waits (bounded by `ms`) for the process behind `pidfd` to end; true if it did.
bool ends_within(int pidfd, int ms) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// A stand-in for ctest: a process that only waits (and dies with this test process).
pid_t start_owner() {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(1);
    for (;;) ::pause();
  }
  return pid;
}

// Sets PROCFIX_SHARED_<NAME> for the scope.
class SharedVariable {
 public:
  SharedVariable(const std::string& name, const std::string& state)
      : variable_{procfix::shared_server_variable(name)} {
    ::setenv(variable_.c_str(), state.c_str(), 1);
  }
  ~SharedVariable() { ::unsetenv(variable_.c_str()); }

 private:
  std::string variable_;
};

// EXPECT_NONFATAL_FAILURE needs a statement without local variables.
procfix::ServerEnvironment* environment_under_test = nullptr;

// Issue 12: the setup test must exit without holding CTest's output pipes (CTest waits for
// their EOF, microsoft/malmo #451). --detach prints the ready line, exits 0, and the keeper that
// holds the server has /dev/null and its log as stdin/stdout/stderr; --stop then ends it all.
TEST(FaultShared, DetachReturnsWithoutHoldingTheCallersPipesAndStopEndsEverything) {
  SharedStateDir dir;
  const std::string token = unique_token("procfix-shared");
  const Ran started = run(
      {"--detach", "--state=" + dir.file(), "--env=TOKEN=" + token, "--", PROCFIX_SAMPLE_CHILD});
  ASSERT_EQ(started.status, 0) << started.err;  // -2: the pipes were held
  const json ready = json::parse(started.out);
  EXPECT_EQ(ready.at("ready"), true);
  const json state = read_json(dir.file());
  EXPECT_EQ(state.at("state"), "running");
  EXPECT_EQ(state.at("message"), ready.at("message"));
  const pid_t keeper = state.at("keeper").at("pid");
  const int keeper_fd = pidfd_open(keeper);
  ASSERT_GE(keeper_fd, 0) << "the keeper is not running";
  for (int fd = 0; fd <= 2; ++fd) {
    const std::string target = std::filesystem::read_symlink("/proc/" + std::to_string(keeper) +
                                                             "/fd/" + std::to_string(fd));
    EXPECT_TRUE(target == "/dev/null" || target == dir.file() + ".log") << fd << ": " << target;
  }
  EXPECT_FALSE(processes_with(token).empty());

  const Ran stopped = run({"--stop", "--state=" + dir.file()});
  EXPECT_EQ(stopped.status, 0) << stopped.err;
  const json report = json::parse(stopped.out);
  EXPECT_EQ(report.at("ok"), true) << stopped.out;
  EXPECT_EQ(report.at("cause"), "SIGTERM");
  EXPECT_TRUE(ends_within(keeper_fd, 0)) << "--stop returned before the keeper ended";
  EXPECT_TRUE(processes_with(token).empty());
  ::close(keeper_fd);
}

// ctest is pid 1 as a container's entry point or in a sandbox's `unshare --pid --fork`: the setup
// test's parent is then pid 1, and --owner-pid=parent watches it (it used to refuse it as "no
// such process to watch", so every shared server failed there). Here sh is pid 1 of a new pid
// namespace and runs --detach, then --stop.
TEST(FaultShared, OwnerThatIsPidOneOfItsNamespaceIsWatched) {
  const std::vector<std::string> unshare = {"unshare", "--user", "--map-root-user",
                                            "--pid",   "--fork", "--mount-proc"};
  std::vector<std::string> probe = unshare;
  probe.push_back("true");
  if (const Ran can = procfix::testing::run_bounded(probe); can.status != 0) {
    GTEST_SKIP() << "cannot create a user and pid namespace here: " << can.err;
  }
  SharedStateDir dir;
  const std::string run_cli = std::string{"'"} + PROCFIX_RUN + "' ";
  std::vector<std::string> args = unshare;
  args.insert(args.end(), {"sh", "-c",
                           run_cli + "--detach '--state=" + dir.file() +
                               "' --owner-pid=parent -- '" + PROCFIX_SAMPLE_CHILD + "' && " +
                               run_cli + "--stop '--state=" + dir.file() + "'"});
  const Ran ran = procfix::testing::run_bounded(args, kHangMs);
  ASSERT_EQ(ran.status, 0) << ran.err;
  EXPECT_THAT(ran.out, HasSubstr("\"ready\":true")) << ran.out;
  EXPECT_THAT(ran.out, HasSubstr("\"ok\":true")) << ran.out;
  EXPECT_EQ(read_json(dir.file()).value("state", ""), "stopped");
}

// Issue 12 (guarantees): SIGKILL of the process that owns the run (ctest) leaves nothing: the
// keeper holds the owner's pidfd and tears the whole tree down (here a server that leaves three
// children behind), within 2 s.
TEST(FaultShared, SigkillOfTheOwnerLeavesNothingOfTheServersTree) {
  SharedStateDir dir;
  const std::string token = unique_token("procfix-shared-owner");
  const pid_t owner = start_owner();
  const Ran started =
      run({"--detach", "--state=" + dir.file(), "--owner-pid=" + std::to_string(owner),
           "--stop-grace=300", "--", fault_child("supervisor_leaker"), token, "3"});
  ASSERT_EQ(started.status, 0) << started.err;
  const int keeper_fd = pidfd_open(read_json(dir.file()).at("keeper").at("pid"));
  ASSERT_GE(keeper_fd, 0);
  EXPECT_GE(processes_with(token).size(), 4u);  // the server and its three children

  ::kill(owner, SIGKILL);
  ::waitpid(owner, nullptr, 0);
  EXPECT_TRUE(ends_within(keeper_fd, 2000)) << "the keeper outlived its owner by 2 s";
  EXPECT_TRUE(survivors_with(token).empty());
  const json report = read_json(dir.file() + ".stop.json");
  EXPECT_THAT(report.value("cause", ""), HasSubstr("owner")) << report.dump();
  EXPECT_EQ(report.at("leaks").size(), 3u) << report.dump();  // its children, reported
  ::close(keeper_fd);
}

// Issue 12 (guarantees, acceptance): SIGKILL of ctest mid-run. A real ctest runs a setup test
// `procfix-run --detach --owner-pid=parent` (its owner is then ctest itself) and a test that
// blocks; ctest is SIGKILLed; within 2 s the keeper has ended and nothing of the server is left.
TEST(FaultShared, SigkillOfCtestMidRunLeavesNothingOfTheSharedServer) {
  SharedStateDir dir;
  const std::string token = unique_token("procfix-shared-ctest");
  const std::string started = dir.file("started"), never = dir.file("never");
  ASSERT_EQ(::mkfifo(started.c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo(never.c_str(), 0600), 0);
  const int started_fd = ::open(started.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  {
    std::ofstream file{dir.file("CTestTestfile.cmake")};
    file << "add_test(srv.setup \"" << PROCFIX_RUN << "\" --detach \"--state=" << dir.file()
         << "\" --owner-pid=parent \"--env=TOKEN=" << token << "\" -- \"" << PROCFIX_SAMPLE_CHILD
         << "\")\n"
         << "set_tests_properties(srv.setup PROPERTIES FIXTURES_SETUP srv)\n"
         << "add_test(blocks sh -c \"echo started > '" << started << "'; read x < '" << never
         << "'\")\n"
         << "set_tests_properties(blocks PROPERTIES FIXTURES_REQUIRED srv)\n";
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {"ctest", "--test-dir", dir.file("")};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t ctest = -1;
  ASSERT_EQ(::posix_spawnp(&ctest, "ctest", &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  pollfd wait_started{started_fd, POLLIN, 0};
  ASSERT_EQ(::poll(&wait_started, 1, kHangMs), 1) << "the blocking test never started";
  const json state = read_json(dir.file());
  ASSERT_EQ(state.value("state", ""), "running") << state.dump();
  EXPECT_EQ(state.at("keeper").at("owner"), ctest);  // the setup test's parent: ctest
  const int keeper_fd = pidfd_open(state.at("keeper").at("pid"));
  ASSERT_GE(keeper_fd, 0);
  EXPECT_FALSE(processes_with(token).empty());

  ::kill(ctest, SIGKILL);
  ::waitpid(ctest, nullptr, 0);
  EXPECT_TRUE(ends_within(keeper_fd, 2000)) << "the keeper outlived ctest by 2 s";
  EXPECT_TRUE(survivors_with(token).empty());
  EXPECT_THAT(read_json(dir.file()).value("reason", ""), HasSubstr("owner"));
  // Release the orphaned blocking test.
  ::close(::open(never.c_str(), O_WRONLY | O_CLOEXEC));
  ::close(keeper_fd);
  ::close(started_fd);
}

// Issue 12 (guarantees): the lifetime bound ends a keeper whose owner never goes away.
TEST(FaultShared, TheLifetimeBoundStopsTheServer) {
  SharedStateDir dir;
  const Ran started =
      run({"--detach", "--state=" + dir.file(), "--max-lifetime=200", "--", PROCFIX_SAMPLE_CHILD});
  ASSERT_EQ(started.status, 0) << started.err;
  const int keeper_fd = pidfd_open(read_json(dir.file()).at("keeper").at("pid"));
  ASSERT_GE(keeper_fd, 0);
  EXPECT_TRUE(ends_within(keeper_fd, kHangMs));
  const json state = read_json(dir.file());
  EXPECT_EQ(state.at("state"), "stopped");
  EXPECT_THAT(state.value("reason", ""), HasSubstr("--max-lifetime=200"));
  const Ran stopped = run({"--stop", "--state=" + dir.file()});
  EXPECT_EQ(stopped.status, 0) << stopped.err;
  EXPECT_THAT(stopped.out, HasSubstr("lifetime bound"));
  ::close(keeper_fd);
}

// Issue 12: a shared server killed mid-run. The next test's SetUp and endpoint() fail at once
// with how it ended (not with a connection error), and --stop reports it (exit 1).
TEST(FaultShared, AServerKilledMidRunFailsTheNextTestWithTheReasonAndStopReportsIt) {
  SharedStateDir dir;
  const Ran started =
      run({"--detach", "--state=" + dir.file(), "--name=victim", "--", PROCFIX_SAMPLE_CHILD});
  ASSERT_EQ(started.status, 0) << started.err;
  const int server = pidfd_open(json::parse(started.out).at("pid"));
  ASSERT_GE(server, 0);
  ::syscall(SYS_pidfd_send_signal, server, SIGKILL, nullptr, 0);
  ASSERT_TRUE(ends_within(server, kHangMs));  // dead (the keeper may not know it yet)
  ::close(server);

  SharedVariable variable{"victim", dir.file()};
  procfix::ServerEnvironment environment{{.executable = PROCFIX_SAMPLE_CHILD, .name = "victim"}};
  environment_under_test = &environment;
  EXPECT_NONFATAL_FAILURE(environment_under_test->SetUp(), "ended during the run");
  EXPECT_EQ(environment.shared_state_file(), dir.file());
  try {
    environment.endpoint();
    ADD_FAILURE() << "endpoint() did not throw";
  } catch (const procfix::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("shared server 'victim'"));
    EXPECT_THAT(e.what(), HasSubstr("SIGKILL"));
  }
  environment.TearDown();  // does not touch the shared server

  const Ran stopped = run({"--stop", "--state=" + dir.file()});
  EXPECT_EQ(stopped.status, 1) << stopped.err;
  const json report = json::parse(stopped.out);
  EXPECT_EQ(report.at("exited_before_stop"), true);
  EXPECT_THAT(stopped.err, HasSubstr("SIGKILL"));
}

// Issue 12: --stop twice (a cleanup test rerun): the second prints the same report, exit 0.
TEST(FaultShared, StopTwiceGivesTheSameReport) {
  SharedStateDir dir;
  ASSERT_EQ(run({"--detach", "--state=" + dir.file(), "--", PROCFIX_SAMPLE_CHILD}).status, 0);
  const Ran first = run({"--stop", "--state=" + dir.file()});
  const Ran second = run({"--stop", "--state=" + dir.file()});
  EXPECT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(first.out, second.out);
  EXPECT_FALSE(first.out.empty());
}

// Issue 12 (--repeat, --rerun-failed): a second --detach for a state file whose keeper runs for
// the same owner reuses that server instead of starting another.
TEST(FaultShared, ARepeatedSetupReusesTheRunningServer) {
  SharedStateDir dir;
  const Ran first = run({"--detach", "--state=" + dir.file(), "--", PROCFIX_SAMPLE_CHILD});
  const Ran second = run({"--detach", "--state=" + dir.file(), "--", PROCFIX_SAMPLE_CHILD});
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(json::parse(first.out).at("pid"), json::parse(second.out).at("pid"));
  EXPECT_THAT(second.err, HasSubstr("reusing"));
  EXPECT_EQ(run({"--stop", "--state=" + dir.file()}).status, 0);
}

// Issue 12: a keeper left by a run that has ended (its owner is gone, the keeper not yet) is
// stopped before a new setup starts its own server: one run never uses another run's server.
TEST(FaultShared, ASetupAfterTheOwnerEndedStopsTheOldKeeperFirst) {
  SharedStateDir dir;
  const pid_t first_owner = start_owner(), second_owner = start_owner();
  const Ran first = run({"--detach", "--state=" + dir.file(),
                         "--owner-pid=" + std::to_string(first_owner), "--", PROCFIX_SAMPLE_CHILD});
  ASSERT_EQ(first.status, 0) << first.err;
  const int old_keeper = pidfd_open(read_json(dir.file()).at("keeper").at("pid"));
  ASSERT_GE(old_keeper, 0);
  ::kill(first_owner, SIGKILL);  // a zombie now: ended, as far as the keeper and the setup see
  const Ran second =
      run({"--detach", "--state=" + dir.file(), "--owner-pid=" + std::to_string(second_owner), "--",
           PROCFIX_SAMPLE_CHILD});
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_NE(json::parse(first.out).at("pid"), json::parse(second.out).at("pid"));
  EXPECT_TRUE(ends_within(old_keeper, 10'000)) << "the old keeper still runs";
  EXPECT_EQ(run({"--stop", "--state=" + dir.file()}).status, 0);
  ::waitpid(first_owner, nullptr, 0);
  ::kill(second_owner, SIGKILL);
  ::waitpid(second_owner, nullptr, 0);
  ::close(old_keeper);
}

// Found by an outside-tester pass: two ctest runs in one build tree at once. The second run's
// setup stopped the first run's live server, whose tests then failed without saying why. Now
// the second setup fails naming the other run, its cleanup leaves that server alone, and the
// first run's own cleanup stops it.
TEST(FaultShared, ASecondRunsSetupIsRefusedWhileTheFirstRunLives) {
  SharedStateDir dir;
  const pid_t first_owner = start_owner(), second_owner = start_owner();
  const std::string first_pid = std::to_string(first_owner);
  const std::string second_pid = std::to_string(second_owner);
  const Ran first = run({"--detach", "--state=" + dir.file(), "--owner-pid=" + first_pid, "--",
                         PROCFIX_SAMPLE_CHILD});
  ASSERT_EQ(first.status, 0) << first.err;
  const int keeper = pidfd_open(read_json(dir.file()).at("keeper").at("pid"));
  ASSERT_GE(keeper, 0);
  const Ran second = run({"--detach", "--state=" + dir.file(), "--owner-pid=" + second_pid, "--",
                          PROCFIX_SAMPLE_CHILD});
  EXPECT_EQ(second.status, 3) << second.err;
  EXPECT_THAT(second.err, HasSubstr("is in use by another run (its owner, pid " + first_pid));
  const Ran second_cleanup = run({"--stop", "--state=" + dir.file(), "--owner-pid=" + second_pid});
  EXPECT_EQ(second_cleanup.status, 0) << second_cleanup.err;
  EXPECT_THAT(second_cleanup.err, HasSubstr("not stopped"));
  EXPECT_FALSE(ends_within(keeper, 0)) << "the first run's server was stopped";
  const Ran first_cleanup = run({"--stop", "--state=" + dir.file(), "--owner-pid=" + first_pid});
  EXPECT_EQ(first_cleanup.status, 0) << first_cleanup.err;
  EXPECT_TRUE(ends_within(keeper, 10'000));
  for (const pid_t owner : {first_owner, second_owner}) {
    ::kill(owner, SIGKILL);
    ::waitpid(owner, nullptr, 0);
  }
  ::close(keeper);
}

// Issue 12: a failed start fails the setup test with the StartError text (exit 3), and no
// keeper stays behind.
TEST(FaultShared, AFailedStartFailsTheSetupWithTheStartError) {
  SharedStateDir dir;
  const Ran started =
      run({"--detach", "--state=" + dir.file(), "--", PROCFIX_SAMPLE_CHILD, "--bogus"});
  EXPECT_EQ(started.status, 3);
  EXPECT_EQ(started.out, "");
  EXPECT_THAT(started.err, HasSubstr("unknown option '--bogus'"));  // the server's stderr tail
  const json state = read_json(dir.file());
  EXPECT_EQ(state.at("state"), "failed");
  EXPECT_TRUE(ends_within(pidfd_open(state.at("keeper").at("pid")), 0) ||
              pidfd_open(state.at("keeper").at("pid")) < 0);
}

// Issue 12: a missing or corrupt state file is a clear error, for --stop and for the tests.
TEST(FaultShared, AMissingOrCorruptStateFileIsAClearError) {
  SharedStateDir dir;
  const Ran missing = run({"--stop", "--state=" + dir.file()});
  EXPECT_EQ(missing.status, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot read the state file"));
  {
    SharedVariable variable{"absent", dir.file()};
    procfix::ServerEnvironment environment{{.name = "absent"}};
    environment_under_test = &environment;
    EXPECT_NONFATAL_FAILURE(environment_under_test->SetUp(), "cannot read the state file");
  }
  std::ofstream{dir.file()} << "{\"ready\": tru";
  const Ran corrupt = run({"--stop", "--state=" + dir.file()});
  EXPECT_EQ(corrupt.status, 2);
  EXPECT_THAT(corrupt.err, HasSubstr("corrupt"));
  SharedVariable variable{"garbled", dir.file()};
  procfix::ServerEnvironment environment{{.name = "garbled"}};
  environment_under_test = &environment;
  EXPECT_NONFATAL_FAILURE(environment_under_test->SetUp(), "corrupt");
}

}  // namespace
