// The fault matrix, launcher area: procfix-supervisor stopped, killed, cut off by closed fds, or
// outliving the test process; fd exhaustion and oversized requests on the launch path.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "detail/launcher.hpp"
#include "detail/unique_fd.hpp"
#include "faults/fault_support.hpp"
#include "procfix/fixtures/errors.hpp"
#include "procfix/fixtures/server.hpp"
#include "support/identity.hpp"
#include "support/sample_child.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using procfix::Server;
using procfix::ServerOptions;
using procfix::StopReport;
using procfix::detail::UniqueFd;
using ::testing::HasSubstr;
using ::testing::Not;

// The direct children of this process (all threads).
std::vector<pid_t> own_children() {
  std::vector<pid_t> children;
  for (const auto& task : std::filesystem::directory_iterator{"/proc/self/task"}) {
    std::ifstream file{task.path() / "children"};
    for (pid_t pid; file >> pid;) children.push_back(pid);
  }
  return children;
}

std::string comm_of(pid_t pid) {
  std::ifstream file{"/proc/" + std::to_string(pid) + "/comm"};
  std::string comm;
  std::getline(file, comm);
  return comm;
}

// This process's live procfix-supervisor (a child named "procfix-supervi[sor]"), or -1.
pid_t supervisor_pid() {
  for (pid_t child : own_children()) {
    if (comm_of(child).starts_with("procfix-supervi")) {
      siginfo_t info{};
      // Skip one that has ended (a zombie not reaped yet).
      if (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == 0) {
        return child;
      }
    }
  }
  return -1;
}

// Stops the supervisor (SIGSTOP) and returns once it is stopped (it is our child: waitid).
void stop_process(pid_t pid) {
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WSTOPPED | WNOWAIT), 0);
}

// Continues `pid` when destroyed, or after `limit` if the test hangs (a guard, not a wait).
class ContinueGuard {
 public:
  ContinueGuard(pid_t pid, std::chrono::seconds limit)
      : pid_{pid}, thread_{[this, limit] {
          std::unique_lock lock{mutex_};
          condition_.wait_for(lock, limit, [this] { return done_; });
          ::kill(pid_, SIGCONT);
        }} {}
  ~ContinueGuard() {
    {
      std::lock_guard lock{mutex_};
      done_ = true;
    }
    condition_.notify_all();
    thread_.join();
  }

 private:
  pid_t pid_;
  std::mutex mutex_;
  std::condition_variable condition_;
  bool done_ = false;
  std::thread thread_;
};

bool readable_within(int fd, std::chrono::milliseconds limit) {
  pollfd probe{fd, POLLIN, 0};
  return ::poll(&probe, 1, static_cast<int>(limit.count())) > 0;
}

// Issue 13 item 3: stop() while procfix-supervisor is stopped waited until it continued, then
// reported a SIGKILL that never happened.
TEST(FaultLauncher, StopWhileSupervisorIsStoppedIsBoundedAndSaysWhatItCouldNotLearn) {
  ServerOptions options = procfix::testing::sample_child();
  options.stop_grace = 2s;
  Server server{options};
  const pid_t supervisor = supervisor_pid();
  ASSERT_GT(supervisor, 0);
  stop_process(supervisor);
  ContinueGuard guard{supervisor, 20s};

  const auto begin = std::chrono::steady_clock::now();
  const StopReport report = server.stop();
  const auto took = std::chrono::steady_clock::now() - begin;

  EXPECT_LT(took, options.stop_grace + 3s) << report.describe();
  EXPECT_FALSE(report.needed_kill) << report.describe();  // it ended on SIGTERM, from us
  EXPECT_FALSE(report.exited_before_stop);
  EXPECT_TRUE(report.status.is_unknown()) << report.describe();
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(
      report.describe(),
      HasSubstr("exit status unknown: procfix-supervisor (pid " + std::to_string(supervisor) +
                ") did not report within 1000 ms (it is stopped); leaks not checked"));
}

// Issue 13 item 3: a supervisor that missed a report while stopped gets the whole wait again once
// it runs: the next server's stop is clean (it used to be reported at once as "did not report
// within 1000 ms", without waiting, for every later server of the process).
TEST(FaultLauncher, SupervisorContinuedAfterAMissedReportReportsTheNextStop) {
  ServerOptions options = procfix::testing::sample_child();
  options.stop_grace = 2s;
  {
    Server server{options};
    const pid_t supervisor = supervisor_pid();
    ASSERT_GT(supervisor, 0);
    stop_process(supervisor);
    ContinueGuard guard{supervisor, 20s};
    ASSERT_TRUE(server.stop().status.is_unknown());
  }  // the guard continues the supervisor
  for (int i = 0; i < 3; ++i) {
    Server next{options};
    next.stop_and_expect_clean();
  }
}

// Issue 13 item 3: a SIGKILL is reported only when this process really sent one, through the
// pidfd, and the stop stays bounded although the supervisor cannot report.
TEST(FaultLauncher, NeededKillWhileSupervisorIsStoppedIsRealAndBounded) {
  ServerOptions options = procfix::testing::sample_child();
  options.stop_grace = 300ms;
  options.stop_signal = SIGWINCH;  // ignored by sample_child: it needs SIGKILL
  Server server{options};
  const pid_t supervisor = supervisor_pid();
  ASSERT_GT(supervisor, 0);
  stop_process(supervisor);
  ContinueGuard guard{supervisor, 20s};

  const auto begin = std::chrono::steady_clock::now();
  const StopReport report = server.stop();
  const auto took = std::chrono::steady_clock::now() - begin;

  EXPECT_LT(took, options.stop_grace + 3s) << report.describe();
  EXPECT_TRUE(report.needed_kill) << report.describe();
  EXPECT_TRUE(report.status.is_unknown()) << report.describe();
  EXPECT_THAT(report.describe(), HasSubstr("after SIGKILL"));
  EXPECT_THAT(report.describe(), HasSubstr("(it is stopped)"));
}

// Issue 13 item 9: a start that hit its deadline before the spawn reply arrived said
// "(pid -1) ... it has been killed" while the child still ran.
TEST(FaultLauncher, StartDeadlineBeforeTheSpawnReplyNeverClaimsAKill) {
  {
    Server warm_up{procfix::testing::sample_child()};
    ASSERT_TRUE(warm_up.stop().ok());
  }
  const pid_t supervisor = supervisor_pid();
  ASSERT_GT(supervisor, 0);
  const std::string token = procfix::testing::unique_token();
  ServerOptions options =
      procfix::testing::sample_child({"--extra-json={\"token\":\"" + token + "\"}"});
  options.ready_timeout = 100ms;
  std::string message;
  {
    stop_process(supervisor);
    ContinueGuard guard{supervisor, 20s};
    message = procfix::testing::start_failure(options).what();
  }  // continued: it reads the request now, spawns the server and kills it at once
  EXPECT_THAT(message, HasSubstr("was not ready within its ready_timeout"));
  EXPECT_THAT(message, Not(HasSubstr("it has been killed")));
  EXPECT_THAT(message, Not(HasSubstr("pid -1")));
  EXPECT_THAT(message, HasSubstr("procfix-supervisor (pid " + std::to_string(supervisor) +
                                 ") did not answer the spawn request within 1000 ms more (it is "
                                 "stopped), so its pid is unknown"));
  // The supervisor handles requests in order: once the next server has started and stopped, the
  // late one has been spawned and killed (SIGKILL: it ends at once; the wait only bounds a hang).
  Server next{procfix::testing::sample_child()};
  EXPECT_TRUE(next.stop().ok());
  for (pid_t pid : procfix::testing::processes_with(token)) {
    UniqueFd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
    if (pidfd) {
      EXPECT_TRUE(readable_within(pidfd.get(), 10s)) << "pid " << pid << " still runs";
    }
  }
}

// Issue 13 item 18: after the supervisor was SIGKILLed the next start failed ("sendmsg: Broken
// pipe") and stopping the orphaned servers threw std::system_error.
TEST(FaultLauncher, DeadSupervisorIsReportedOncePerServerAndReplaced) {
  Server first{procfix::testing::sample_child()};
  Server second{procfix::testing::sample_child()};
  const pid_t supervisor = supervisor_pid();
  ASSERT_GT(supervisor, 0);
  ASSERT_EQ(::kill(supervisor, SIGKILL), 0);
  // Its servers die with it (PR_SET_PDEATHSIG); their exits show on their pidfds.
  ASSERT_TRUE(readable_within(first.exit_event_fd(), 10s));
  ASSERT_TRUE(readable_within(second.exit_event_fd(), 10s));

  std::optional<Server> next;
  EXPECT_NO_THROW(next.emplace(procfix::testing::sample_child()));
  EXPECT_NE(supervisor_pid(), supervisor);

  const std::string died =
      "procfix-supervisor (pid " + std::to_string(supervisor) +
      ") died (killed by signal 9 (SIGKILL)) before it reported the server's exit";
  for (Server* orphan : {&first, &second}) {
    StopReport report;
    EXPECT_NO_THROW(report = orphan->stop());
    EXPECT_TRUE(report.status.is_unknown()) << report.describe();
    EXPECT_FALSE(report.ok());
    EXPECT_THAT(report.describe(), HasSubstr(died));
  }
  if (next) {
    const StopReport report = next->stop();
    EXPECT_TRUE(report.ok()) << report.describe();
  }
}

// Issue 13 item 19: code that closes every fd above 2 after procfix has run (daemonising code)
// left procfix broken for the rest of the process. The launcher notices that its lifeline and
// the supervisor's pidfd are gone (or their numbers reused) and starts a new supervisor; the old
// one sees its lifeline close, kills its servers and is reaped.
TEST(FaultLauncher, LauncherRecoversAfterEveryFdAboveTwoWasClosed) {
#if defined(__SANITIZE_THREAD__)
  // Closing every fd under the output pump's feet, and reusing the numbers, is the very fd race
  // ThreadSanitizer reports (the pump thread's epoll_wait against a later close of the reused
  // number): the scenario's own race, not procfix's. Covered by the default and ASan builds.
  GTEST_SKIP() << "closing all fds under a running thread is what TSan reports as a race";
#endif
  {
    Server warm_up{procfix::testing::sample_child()};
    ASSERT_TRUE(warm_up.stop().ok());
  }
  const pid_t old_supervisor = supervisor_pid();
  ASSERT_GT(old_supervisor, 0);
  ASSERT_EQ(::syscall(SYS_close_range, 3U, ~0U, 0U), 0);
  // Reuse the freed numbers, as the daemonising code would.
  std::vector<UniqueFd> squatters;
  for (int i = 0; i < 8; ++i) squatters.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  procfix::detail::LaunchSpec spec;
  spec.executable = "/bin/sh";
  spec.args = {"-c", "exit 7"};
  std::unique_ptr<procfix::detail::ChildProcess> child;
  ASSERT_NO_THROW(child = procfix::detail::supervised_launcher().launch(spec));
  ASSERT_NO_THROW(child->complete_launch());
  ASSERT_TRUE(readable_within(child->exit_fd(), 10s));
  EXPECT_EQ(child->reap(), procfix::ExitStatus::exited(7));
  const pid_t new_supervisor = supervisor_pid();
  EXPECT_GT(new_supervisor, 0);
  EXPECT_NE(new_supervisor, old_supervisor);
  // The squatters' fds were not closed by procfix.
  for (const UniqueFd& fd : squatters) EXPECT_GE(::fcntl(fd.get(), F_GETFD), 0);
}

// Issue 13 item 15: EMFILE on the launch path named the failing call only ("socketpair: Too many
// open files") as a std::system_error.
TEST(FaultLauncher, FdExhaustionIsALaunchErrorSayingTooManyOpenFiles) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizers' own checks need fds (UBSan's vptr check opens a pipe): not here.
  GTEST_SKIP() << "fd exhaustion breaks the sanitizers' runtime";
#endif
  {
    Server warm_up{procfix::testing::sample_child()};  // the supervisor is running
    ASSERT_TRUE(warm_up.stop().ok());
  }
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<UniqueFd> filler;
  rlimit low = saved;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  for (;;) {
    UniqueFd fd{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
    if (!fd) break;
    filler.push_back(std::move(fd));
  }
  procfix::detail::LaunchSpec spec;
  spec.executable = "/bin/true";
  std::string message;
  bool launch_error = false;
  try {
    auto child = procfix::detail::supervised_launcher().launch(spec);
  } catch (const procfix::detail::LaunchError& e) {
    launch_error = true;
    message = e.what();
  } catch (const std::exception& e) {
    message = e.what();
  }
  std::string start_message;
  bool start_error = false;
  try {
    Server server{procfix::testing::sample_child()};
  } catch (const procfix::StartError& e) {
    start_error = true;
    start_message = e.what();
  } catch (const std::exception& e) {
    start_message = e.what();
  }
  filler.clear();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_TRUE(launch_error) << message;
  EXPECT_THAT(message, HasSubstr("too many open files (EMFILE)"));
  EXPECT_TRUE(start_error) << start_message;
  EXPECT_THAT(start_message, HasSubstr("server 'sample_child' failed to start"));
  EXPECT_THAT(start_message, HasSubstr("too many open files (EMFILE)"));
}

// Session 7: with the process limit reached, the spawn (procfix's own clone since issue 16) fails
// with EAGAIN; the start must fail at once with an error that names the limit, not just
// "Resource temporarily unavailable". RLIMIT_NPROC binds only an unprivileged user: a root test
// process switches to nobody first (in a fresh process: the death test's). In-process: the same
// spawn_process() the supervisor is started with, without needing the build tree to be
// reachable by nobody.
TEST(FaultLauncher, ProcessLimitReachedIsAStartErrorNamingTheLimit) {
  constexpr uid_t kNobody = 65534;
  if (::geteuid() == 0) {
    const std::string why = procfix::testing::why_users_cannot_be_switched();
    if (!why.empty()) GTEST_SKIP() << why << "; and RLIMIT_NPROC does not bind root";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: its first server
  const auto start_without_processes = [] {
    ::alarm(30);  // a start that hangs ends this process (SIGALRM) instead of the test run
    if (::geteuid() == 0 &&
        (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) {
      _exit(3);
    }
    rlimit none{};
    ::getrlimit(RLIMIT_NPROC, &none);
    none.rlim_cur = 0;  // no new process at all for this user
    if (::setrlimit(RLIMIT_NPROC, &none) != 0) _exit(4);
    ::setenv("PROCFIX_LAUNCHER", "in-process", 1);
    try {
      Server server{procfix::testing::sample_child()};
      std::fprintf(stderr, "started\n");
      _exit(1);
    } catch (const procfix::StartError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      _exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "not a StartError: %s\n", e.what());
      _exit(2);
    }
  };
  EXPECT_EXIT(start_without_processes(), ::testing::ExitedWithCode(0),
              "failed to start.*process limit is reached: the user's RLIMIT_NPROC");
}

// Issue 13 item 15: a spawn request over 192 KiB threw std::system_error from Server's
// constructor.
TEST(FaultLauncher, OversizedRequestIsAStartErrorNamingTheServer) {
  ServerOptions options = procfix::testing::sample_child({std::string(200 * 1024, 'x')});
  options.name = "oversized";
  try {
    Server server{options};
    FAIL() << "started";
  } catch (const procfix::StartError& e) {
    EXPECT_THAT(e.what(), HasSubstr("server 'oversized'"));
    EXPECT_THAT(e.what(), HasSubstr("over the limit of 196608"));
  } catch (const std::exception& e) {
    FAIL() << "not a StartError: " << e.what();
  }
}

// --- Item 23: a test program under pipes, run by a subreaper helper ---------------------------

constexpr const char* kProgramMode = "PROCFIX_LAUNCHER_TEST_PROGRAM";

// Not a test: the program the item 23 tests run (this binary again). It starts a server, prints
// its supervisor's pid, maybe stops the supervisor, and ends as its mode says.
TEST(FaultLauncher, DISABLED_ProgramForOutputPipeTests) {
  const char* mode = std::getenv(kProgramMode);
  if (mode == nullptr) GTEST_SKIP() << "run by the item 23 tests only";
  // Never stopped: left running for the exit.
  auto* server = new Server{procfix::testing::sample_child()};
  (void)server;
  const pid_t supervisor = supervisor_pid();
  std::printf("supervisor %d\n", supervisor);
  std::fflush(stdout);
  const std::string how = mode;
  if (how.find("stopped") != std::string::npos) stop_process(supervisor);
  if (how.find("_exit") != std::string::npos) ::_exit(0);
  std::exit(0);
}

struct ProgramOutcome {
  bool eof = false;         // stdout and stderr reached EOF within the bound
  int leftovers = 0;        // processes (live or zombie) re-parented to the subreaper
  int program_status = -1;  // waitpid status of the program
  pid_t supervisor = -1;    // as the program printed it
};

// Runs this binary's DISABLED_ProgramForOutputPipeTests in `mode` under pipes, from a forked
// helper that is a child subreaper: what the program's exit leaves behind is re-parented to it.
ProgramOutcome run_program(const std::string& mode) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args{exe,
                                "--gtest_filter=FaultLauncher.DISABLED_ProgramForOutputPipeTests",
                                "--gtest_also_run_disabled_tests"};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view{*e}.starts_with("ASAN_OPTIONS=")) env.emplace_back(*e);
  }
  env.push_back(std::string{kProgramMode} + "=" + mode);
  env.push_back("ASAN_OPTIONS=detect_leaks=0");  // it exits with its server running, on purpose
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int result[2], out[2], err[2];
  if (::pipe2(result, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
      ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2";
    return {};
  }
  const pid_t helper = ::fork();
  if (helper == 0) {
    // The helper: only system calls and stack buffers from here on.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    ::alarm(60);  // a hang guard
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    pid_t program = -1;
    if (posix_spawn(&program, argv[0], &actions, nullptr, argv.data(), envp.data()) != 0) _exit(3);
    ::close(out[1]);
    ::close(err[1]);
    struct {
      ProgramOutcome outcome;
      char text[8192];
    } r{};
    std::size_t text_size = 0;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_pipes = 2;
    while (open_pipes > 0) {
      if (::poll(fds, 2, 10'000) <= 0) break;  // no EOF within 10 s
      for (pollfd& p : fds) {
        if (p.fd < 0 || p.revents == 0) continue;
        char chunk[4096];
        const ssize_t n = ::read(p.fd, chunk, sizeof chunk);
        if (n > 0 && p.fd == out[0]) {
          const std::size_t room = sizeof r.text - 1 - text_size;
          const std::size_t copy =
              static_cast<std::size_t>(n) < room ? static_cast<std::size_t>(n) : room;
          std::memcpy(r.text + text_size, chunk, copy);
          text_size += copy;
        }
        if (n <= 0) {
          p.fd = -1;
          --open_pipes;
        }
      }
    }
    r.outcome.eof = open_pipes == 0;
    int status = 0;
    ::waitpid(program, &status, 0);
    r.outcome.program_status = status;
    // Whatever is still our child now came from the program's exit: count it, kill it, reap it.
    char path[64] = "/proc/self/task/";
    char digits[16];
    int length = 0;
    for (pid_t v = ::getpid(); v > 0; v /= 10) digits[length++] = static_cast<char>('0' + v % 10);
    std::size_t at = std::strlen(path);
    while (length > 0) path[at++] = digits[--length];
    std::memcpy(path + at, "/children", sizeof "/children");
    char list[1024] = {};
    const int file = ::open(path, O_RDONLY | O_CLOEXEC);
    const ssize_t n = file >= 0 ? ::read(file, list, sizeof list - 1) : 0;
    if (file >= 0) ::close(file);
    for (char* p = list; n > 0 && *p != '\0';) {
      char* end = nullptr;
      const long pid = std::strtol(p, &end, 10);
      if (end == p) break;
      p = end;
      ++r.outcome.leftovers;
      ::kill(static_cast<pid_t>(pid), SIGKILL);  // our unreaped child: the pid is its own
      siginfo_t info{};
      ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED);
    }
    (void)!::write(result[1], &r, sizeof r);
    _exit(0);
  }
  ::close(out[0]);
  ::close(out[1]);
  ::close(err[0]);
  ::close(err[1]);
  ::close(result[1]);
  struct {
    ProgramOutcome outcome;
    char text[8192];
  } r{};
  const bool got = ::read(result[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
  ::close(result[0]);
  ::waitpid(helper, nullptr, 0);
  EXPECT_TRUE(got) << "the helper did not report";
  if (const char* line = std::strstr(r.text, "\nsupervisor ")) {
    std::sscanf(line, "\nsupervisor %d", &r.outcome.supervisor);
  }
  return r.outcome;
}

// Issue 13 item 23: the supervisor kept the test process's stderr open, so a reader waiting for
// EOF (CTest, subprocess.run) waited as long as a stopped supervisor lived.
TEST(FaultLauncher, OutputPipesReachEofAtExitAlthoughTheSupervisorIsStopped) {
  const ProgramOutcome outcome = run_program("stopped,_exit");
  EXPECT_GT(outcome.supervisor, 0);
  EXPECT_TRUE(outcome.eof) << "the program's stdout/stderr stayed open after it ended";
}

// Issue 13 item 23: each test binary left its supervisor as a zombie for pid 1 to reap.
TEST(FaultLauncher, ExitReapsTheSupervisor) {
  const ProgramOutcome outcome = run_program("exit");
  EXPECT_GT(outcome.supervisor, 0);
  EXPECT_TRUE(outcome.eof);
  EXPECT_TRUE(WIFEXITED(outcome.program_status) && WEXITSTATUS(outcome.program_status) == 0)
      << outcome.program_status;
  EXPECT_EQ(outcome.leftovers, 0) << "processes left for the reaper when the program exited";
}

// Issue 13 item 23: the same with a stopped supervisor: the exit continues it so that it kills its
// servers, reaps it, and the output pipes reach EOF.
TEST(FaultLauncher, ExitReapsAStoppedSupervisorAndReachesEof) {
  const ProgramOutcome outcome = run_program("stopped,exit");
  EXPECT_GT(outcome.supervisor, 0);
  EXPECT_TRUE(outcome.eof);
  EXPECT_TRUE(WIFEXITED(outcome.program_status) && WEXITSTATUS(outcome.program_status) == 0)
      << outcome.program_status;
  EXPECT_EQ(outcome.leftovers, 0) << "processes left for the reaper when the program exited";
}

}  // namespace
