#include "shared.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "detail/linux.hpp"
#include "detail/proc.hpp"
#include "detail/write_all.hpp"
#include "front.hpp"
#include "options.hpp"
#include "procfix/fixtures/server.hpp"
#include "report.hpp"

namespace procfix::run {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitMisbehaved = 1;
constexpr int kExitUsage = 2;
// How long --stop waits for the keeper beyond the server's stop grace before it SIGKILLs it (an
// upper bound that only catches a hung keeper).
constexpr milliseconds kKeeperMargin{30'000};

struct SharedArgs {
  bool detach = false;
  bool stop = false;
  std::string state;
  std::string owner;  // "parent", a pid, or empty
  milliseconds max_lifetime = milliseconds::max();
  std::vector<char*> rest;  // argv without the shared switches (argv[0] first)
};

int usage(const std::string& message) {
  std::cerr << "procfix-run: " << message << "\nTry 'procfix-run --help'.\n";
  return kExitUsage;
}

std::string to_line(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

// Writes `value` as one line to `path` atomically: a temporary file in the same directory, then
// rename(). A reader sees the old content or the new one, never a part.
void write_atomically(const std::string& path, const json& value) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  detail::write_all(fd, to_line(value));
  ::close(fd);
  ::rename(temporary.c_str(), path.c_str());
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream file{path};
  if (!file) return std::nullopt;
  return std::string{std::istreambuf_iterator<char>{file}, {}};
}

std::string stop_file(const std::string& state) {
  return state + ".stop.json";
}

// The start time of /proc/PID/stat (clock ticks): with the pid it names one process, so a reused
// pid is never mistaken for the keeper. 0 if the process does not exist.
unsigned long long start_time_of(pid_t pid) {
  const std::optional<detail::ProcStat> stat = detail::read_proc_stat(pid);
  return stat ? stat->start_time : 0;
}

// The owner (a ctest run) of the keeper `keeper` (the state file's "keeper") if it is another
// process than `owner_pid` and still running; 0 otherwise (no owner, ours, or ended: the keeper
// ends with its owner, so its server is nobody's any more).
pid_t other_live_owner(const json& keeper, pid_t owner_pid) {
  const auto owner = keeper.find("owner");
  const pid_t other = owner != keeper.end() && owner->is_number_integer() ? owner->get<pid_t>() : 0;
  if (other <= 0 || other == owner_pid) return 0;
  const char state = detail::process_state(other);
  return state == '?' || state == 'Z' || state == 'X' ? 0 : other;
}

// The pid --owner-pid names ("parent": this process's parent, the ctest running the test); 0
// without the switch.
pid_t owner_pid_of(const SharedArgs& args) {
  if (args.owner.empty()) return 0;
  return args.owner == "parent" ? ::getppid() : static_cast<pid_t>(std::atol(args.owner.c_str()));
}

milliseconds parse_ms(std::string_view option, std::string_view text) {
  if (text == "inf") return milliseconds::max();
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos ||
      text.size() > 15) {
    throw UsageError{std::string{option} + " needs a number of milliseconds or inf, not '" +
                     std::string{text} + "'"};
  }
  return milliseconds{std::stoll(std::string{text})};
}

// Picks the shared switches out of argv (before "--"). Returns nothing if there are none.
std::optional<SharedArgs> parse_shared(int argc, char** argv) {
  SharedArgs args;
  bool any = false;
  args.rest.push_back(argv[0]);
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    auto value_of = [&](std::string_view name) -> std::optional<std::string_view> {
      if (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=') {
        return arg.substr(name.size() + 1);
      }
      return std::nullopt;
    };
    if (arg == "--detach") {
      args.detach = any = true;
    } else if (arg == "--stop") {
      args.stop = any = true;
    } else if (auto state = value_of("--state")) {
      args.state = *state;
      any = true;
    } else if (auto owner = value_of("--owner-pid")) {
      args.owner = *owner;
      any = true;
    } else if (auto lifetime = value_of("--max-lifetime")) {
      args.max_lifetime = parse_ms("--max-lifetime", *lifetime);
      any = true;
    } else {
      args.rest.push_back(argv[i]);
    }
  }
  for (; i < argc; ++i) args.rest.push_back(argv[i]);
  if (!any) return std::nullopt;
  if (args.detach == args.stop) throw UsageError{"give exactly one of --detach and --stop"};
  if (args.state.empty()) throw UsageError{"--detach and --stop need --state=FILE"};
  if (args.stop && args.rest.size() > 1) {
    throw UsageError{"--stop takes only --state=FILE and --owner-pid, not '" +
                     std::string{args.rest[1]} + "'"};
  }
  return args;
}

// What a keeper waits for: the owner's end, SIGTERM/SIGINT/SIGHUP, the lifetime bound, and (once
// the server runs) the server's end. Returns the cause, or empty if `extra` (an eventfd) fired.
std::string wait_for_cause(int owner, pid_t owner_pid, int signals, int server_ended, int extra,
                           Clock::time_point deadline, milliseconds lifetime) {
  for (;;) {
    pollfd fds[4] = {
        {owner, POLLIN, 0}, {signals, POLLIN, 0}, {server_ended, POLLIN, 0}, {extra, POLLIN, 0}};
    int timeout = -1;
    if (deadline != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
      timeout = static_cast<int>(std::clamp<long long>(left, 0, 1'000'000'000));
    }
    const int n = ::poll(fds, 4, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::string{"poll failed: "} + std::strerror(errno);
    }
    if (n == 0) {
      return "the lifetime bound (--max-lifetime=" + std::to_string(lifetime.count()) + ") passed";
    }
    if (fds[3].revents != 0) return {};
    if (fds[1].revents != 0) {
      signalfd_siginfo info{};
      if (::read(signals, &info, sizeof info) != sizeof info) return "signal";
      return signal_name(static_cast<int>(info.ssi_signo));
    }
    if (fds[0].revents != 0) return "the owner (pid " + std::to_string(owner_pid) + ") ended";
    if (fds[2].revents != 0) return "server exited";
  }
}

// The keeper's set-up: its own session, off the caller's (CTest's) pipes (nothing the keeper
// starts may hold them): stdin /dev/null, stdout and stderr to `log`, every other fd CLOEXEC.
void leave_callers_pipes(const std::string& log) {
  ::setsid();
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(log_fd >= 0 ? log_fd : null_fd, STDOUT_FILENO);
  ::dup2(log_fd >= 0 ? log_fd : null_fd, STDERR_FILENO);
  ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
}

// Blocks SIGTERM, SIGINT and SIGHUP (ignores SIGPIPE); returns a signalfd reading them.
int blocked_stop_signal_fd() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, sig);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
}

// The keeper's end, for `cause`: stops the server, writes the stop report and the last state,
// exits.
[[noreturn]] void stop_and_exit(const SharedArgs& args, std::optional<Server>& server, json& state,
                                const std::string& cause) {
  const StopReport stopped = server->stop();
  write_atomically(stop_file(args.state), stopped_line(stopped, cause, /*details=*/true));
  state["ready"] = false;
  if (cause == "server exited") {
    state["state"] = "exited";
    state["reason"] = "the shared server ended during the run: " + stopped.describe();
  } else {
    state["state"] = "stopped";
    state["reason"] = "the shared server was stopped: " + cause;
  }
  write_atomically(args.state, state);
  std::cerr << "procfix-run: keeper: " << cause << "; "
            << (stopped.ok() ? "stopped cleanly" : stopped.describe()) << '\n';
  server.reset();
  // std::exit, not _exit: the fixtures library reaps its procfix-supervisor at exit.
  std::exit(stopped.ok() ? kExitOk : kExitMisbehaved);
}

// The state file's "keeper": this process (pid and start time name it), for --stop and reuse.
json describe_keeper(const ServerOptions& options, const std::string& log, pid_t owner_pid) {
  return {{"pid", ::getpid()},
          {"start_time", start_time_of(::getpid())},
          {"stop_grace_ms",
           options.stop_grace == milliseconds::max() ? -1 : options.stop_grace.count()},
          {"log", log},
          {"owner", owner_pid}};
}

// The line --detach prints once the server is ready.
json ready_line(const Server& server) {
  json ready = {{"ready", true}, {"pid", server.pid()}};
  if (server.endpoint().has_address()) ready["address"] = server.endpoint().address();
  ready["message"] = server.endpoint().message();
  return ready;
}

// The keeper process: never returns.
// `fields_as_switches`: the options came from switches, so an OptionsError names the switch (with
// --options-from they came from C++, whose field names it keeps).
[[noreturn]] void keeper(const SharedArgs& args, ServerOptions options, int owner, pid_t owner_pid,
                         int report, bool fields_as_switches) {
  const std::string log = args.state + ".log";
  leave_callers_pipes(log);
  const int signals = blocked_stop_signal_fd();
  const Clock::time_point deadline = args.max_lifetime == milliseconds::max()
                                         ? Clock::time_point::max()
                                         : Clock::now() + args.max_lifetime;
  const json keeper_info = describe_keeper(options, log, owner_pid);
  const std::string name =
      options.name.empty() ? options.executable.filename().string() : options.name;
  write_atomically(
      args.state,
      {{"ready", false}, {"state", "starting"}, {"name", name}, {"keeper", keeper_info}});
  auto fail_start = [&](const std::string& reason, int code) {
    write_atomically(args.state, {{"ready", false},
                                  {"state", "failed"},
                                  {"name", name},
                                  {"reason", reason},
                                  {"keeper", keeper_info}});
    detail::write_all(report, to_line({{"error", reason}, {"exit", code}}));
    std::cerr << "procfix-run: " << reason << '\n';
    _exit(code);
  };

  // While procfix::Server waits for readiness (it cannot be interrupted), a watchdog thread ends
  // the keeper at once on any cause; the supervisor then kills the half-started server.
  const int started = ::eventfd(0, EFD_CLOEXEC);
  std::thread watchdog{[&] {
    const std::string cause =
        wait_for_cause(owner, owner_pid, signals, -1, started, deadline, args.max_lifetime);
    if (cause.empty()) return;
    fail_start(cause + " while waiting for readiness: the server was killed", kExitStartFailed);
  }};
  std::optional<Server> server;
  try {
    server.emplace(std::move(options));
  } catch (const OptionsError& e) {
    fail_start(fields_as_switches ? with_option_names(e) : std::string{e.what()}, kExitUsage);
  } catch (const std::exception& e) {
    fail_start(e.what(), kExitStartFailed);
  }
  const std::uint64_t one = 1;
  detail::write_all(started, std::string_view{reinterpret_cast<const char*>(&one), sizeof one});
  watchdog.join();

  const json ready = ready_line(*server);
  json state = ready;
  state["state"] = "running";
  state["name"] = name;
  state["keeper"] = keeper_info;
  write_atomically(args.state, state);
  detail::write_all(report, to_line(ready));
  ::close(report);

  const std::string cause = wait_for_cause(owner, owner_pid, signals, server->exit_event_fd(), -1,
                                           deadline, args.max_lifetime);
  stop_and_exit(args, server, state, cause);
}

// What a setup does with the keeper already kept for its state file.
enum class Kept {
  none,     // none (or ended): start one
  reused,   // this owner's (a repeated setup test, e.g. ctest --repeat): its ready line printed
  refused,  // another run's, still running (two ctest runs in one build tree): said why
};

// A keeper already kept for this state file: reused if it is of this owner; refused if it is
// of another owner still running (stopping it would fail that run's tests without a word);
// stopped first if its owner has ended (one run never uses another run's server).
Kept reuse_kept_server(const SharedArgs& args, pid_t owner_pid) {
  const auto text = read_file(args.state);
  if (!text) return Kept::none;
  const json state = json::parse(*text, nullptr, false);
  const std::string phase = state.is_object() ? state.value("state", "") : "";
  if ((phase != "running" && phase != "starting") || !state.contains("keeper") ||
      !state["keeper"].is_object()) {
    return Kept::none;
  }
  const pid_t keeper_pid = state["keeper"].value("pid", -1);
  const bool alive =
      keeper_pid > 0 && start_time_of(keeper_pid) == state["keeper"].value("start_time", 0ULL);
  if (!alive) return Kept::none;
  if (const pid_t other = other_live_owner(state["keeper"], owner_pid); other != 0) {
    std::cerr << "procfix-run: --detach: the shared server '" << state.value("name", "?") << "' of "
              << args.state << " is in use by another run (its owner, pid " << other << " "
              << detail::command_line(other) << ", is still running; keeper pid " << keeper_pid
              << "): two ctest runs in one build tree cannot share it. Wait for "
              << "that run, or run in another build tree.\n";
    return Kept::refused;
  }
  if (phase != "running" || state["keeper"].value("owner", 0) != owner_pid) {
    const int old = detail::pidfd_open(keeper_pid);
    if (old >= 0) {
      detail::pidfd_send_signal(old, SIGTERM);
      pollfd handle{old, POLLIN, 0};
      ::poll(&handle, 1, static_cast<int>(kKeeperMargin.count()));
      ::close(old);
    }
    return Kept::none;
  }
  json ready = {{"ready", true}, {"pid", state.value("pid", -1)}};
  if (state.contains("address")) ready["address"] = state["address"];
  ready["message"] = state.value("message", json::object());
  detail::write_all(STDOUT_FILENO, to_line(ready));
  std::cerr << "procfix-run: --detach: reusing the server kept by pid " << keeper_pid << " for "
            << args.state << '\n';
  return Kept::reused;
}

// The keeper's report: its first line on `fd` (up to EOF if it has none).
std::string read_report(int fd) {
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.find('\n') != std::string::npos) break;
  }
  return text;
}

// The exit status of --detach once the keeper `pid` has reported on `report` (or ended).
int await_keeper(const SharedArgs& args, pid_t pid, int report) {
  const std::string text = read_report(report);
  const json message = json::parse(text.substr(0, text.find('\n')), nullptr, false);
  if (message.is_object() && message.contains("ready")) {
    detail::write_all(STDOUT_FILENO, text.substr(0, text.find('\n') + 1));
    return kExitOk;  // the keeper runs on, in its own session, off our pipes
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (message.is_object() && message.contains("error")) {
    std::cerr << "procfix-run: " << message["error"].get<std::string>() << '\n';
    return message.value("exit", kExitStartFailed);
  }
  std::cerr << "procfix-run: the keeper process ended before the server was ready (status "
            << status << "); see " << args.state << ".log\n";
  return kExitStartFailed;
}

int detach(const SharedArgs& args) {
  CommandLine line;
  try {
    line = parse_command_line(static_cast<int>(args.rest.size()),
                              const_cast<char**>(args.rest.data()));
  } catch (const UsageError& e) {
    return usage(e.what());
  }
  const pid_t owner_pid = owner_pid_of(args);
  int owner = -1;
  if (!args.owner.empty()) {
    // Pid 1 is a valid owner: ctest is pid 1 as a container's entry point or in a sandbox's
    // `unshare --pid --fork`. (Had the real owner died before this line, the parent would be a
    // subreaper or init and the keeper would last until --max-lifetime: docs/shared-servers.md.)
    if (owner_pid <= 0 || (owner = detail::pidfd_open(owner_pid)) < 0) {
      return usage("--owner-pid=" + args.owner + ": no such process to watch");
    }
  }
  switch (reuse_kept_server(args, owner_pid)) {
    case Kept::reused:
      return kExitOk;
    case Kept::refused:
      return kExitStartFailed;
    case Kept::none:
      break;
  }
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path{args.state}.parent_path(), ignored);
  std::filesystem::remove(stop_file(args.state), ignored);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return usage("pipe2 failed");
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) return usage("fork failed");
  if (pid == 0) {
    ::close(report[0]);
    keeper(args, std::move(line.server), owner, owner_pid, report[1], line.options_from.empty());
  }
  ::close(report[1]);
  return await_keeper(args, pid, report[0]);
}

// A cleanup test (--owner-pid=parent) stops only its own run's server: after its setup was
// refused, the state file still names another run's. True (and says so) if `state` is such.
bool belongs_to_another_run(const SharedArgs& args, const json& state) {
  if (args.owner.empty()) return false;
  const pid_t other = other_live_owner(state["keeper"], owner_pid_of(args));
  if (other == 0) return false;
  std::cerr << "procfix-run: --stop: not stopped: the shared server '" << state.value("name", "?")
            << "' of " << args.state << " belongs to another run (its owner, pid " << other
            << ", is still running); this run's setup did not start one\n";
  return true;
}

int stop(const SharedArgs& args) {
  const auto text = read_file(args.state);
  if (!text) {
    std::cerr << "procfix-run: --stop: cannot read the state file '" << args.state
              << "': no shared server was started with --state=" << args.state
              << " (did the setup test run?)\n";
    return kExitUsage;
  }
  const json state = json::parse(*text, nullptr, false);
  if (!state.is_object() || !state.contains("keeper") || !state["keeper"].is_object() ||
      !state["keeper"].value("pid", json{}).is_number_integer()) {
    std::cerr << "procfix-run: --stop: the state file '" << args.state
              << "' is not a procfix shared-server state file (corrupt or foreign)\n";
    return kExitUsage;
  }
  const auto keeper_pid = state["keeper"]["pid"].get<pid_t>();
  const auto start_time = state["keeper"].value("start_time", 0ULL);
  if (belongs_to_another_run(args, state)) return kExitOk;
  const int keeper = detail::pidfd_open(keeper_pid);
  if (keeper >= 0 && start_time_of(keeper_pid) == start_time) {
    detail::pidfd_send_signal(keeper, SIGTERM);
    const long long grace = state["keeper"].value("stop_grace_ms", 5000LL);
    const long long bound = grace < 0 ? -1 : grace + kKeeperMargin.count();
    pollfd handle{keeper, POLLIN, 0};
    while (::poll(&handle, 1, static_cast<int>(bound)) < 0 && errno == EINTR) {
    }
    if (handle.revents == 0) {
      detail::pidfd_send_signal(keeper, SIGKILL);
      std::cerr << "procfix-run: --stop: the keeper (pid " << keeper_pid << ") did not end within "
                << bound << " ms and was killed\n";
    }
  }
  if (keeper >= 0) ::close(keeper);
  const auto report_text = read_file(stop_file(args.state));
  const json report =
      report_text ? json::parse(*report_text, nullptr, false) : json(json::value_t::discarded);
  if (!report.is_object()) {
    const json now = json::parse(read_file(args.state).value_or(""), nullptr, false);
    const std::string reason = now.is_object() ? now.value("reason", std::string{}) : std::string{};
    std::cerr << "procfix-run: --stop: the shared server '" << state.value("name", "?")
              << "' left no stop report"
              << (reason.empty() ? std::string{" (its keeper was killed?)"} : ": " + reason)
              << '\n';
    return kExitMisbehaved;
  }
  detail::write_all(STDOUT_FILENO, to_line(report));
  if (report.value("ok", false)) return kExitOk;
  std::cerr << "procfix-run: " << report.value("report", std::string{}) << '\n';
  const std::string tail = report.value("stderr_tail", std::string{});
  if (!tail.empty()) std::cerr << "procfix-run: the server's stderr tail:\n" << tail << '\n';
  return kExitMisbehaved;
}

}  // namespace

std::optional<int> run_shared_mode(int argc, char** argv) {
  std::optional<SharedArgs> args;
  try {
    args = parse_shared(argc, argv);
  } catch (const UsageError& e) {
    return usage(e.what());
  }
  if (!args) return std::nullopt;
  ::signal(SIGPIPE, SIG_IGN);
  return args->detach ? detach(*args) : stop(*args);
}

const char* shared_help_text() {
  return R"(
Shared servers (one server for a whole ctest run; docs/shared-servers.md):
  --detach --state=FILE [--owner-pid=PID|parent] [--max-lifetime=MS] [OPTION]... -- SERVER...
                         start SERVER under a detached keeper, write the ready line to FILE,
                         print it and exit 0; the keeper stops the server when it gets
                         SIGTERM, the owner ends, or MS pass; FILE.log is the keeper's log;
                         --options-from=BINARY:NAME instead of OPTIONs and SERVER takes them
                         from a test binary's procfix::add_global_server() for NAME
  --stop --state=FILE    stop that server, print its stop line; exit 0 clean, 1 misbehaved
)";
}

}  // namespace procfix::run
