// procfix-run: start any server exactly as the fixtures do, for test suites in any language.
// See docs/cli.md and `procfix-run --help`.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "procfix/fixtures/server.hpp"

namespace {

using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitMisbehaved = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStartFailed = 3;

constexpr std::string_view kHelp = R"(usage: procfix-run [OPTION]... -- SERVER [ARG]...
Starts SERVER, waits until it is ready, prints ONE JSON line on stdout:
  {"ready":true,"pid":N,"address":"127.0.0.1:43121","message":{...readiness message...}}
then waits until its standard input reaches EOF, it receives SIGTERM or SIGINT, or the server
exits by itself. It then stops the server (stop signal, grace, SIGKILL; leaked processes are
killed and reaped) and prints ONE JSON line:
  {"stopped":true,"ok":true,"pid":N,"exit":{"status":0},"needed_kill":false,
   "exited_before_stop":false,"stop_ms":1.2,"leaks":[{"pid":N,"command_line":"..."}]}
Nothing else is ever written to stdout. If procfix-run itself is killed (even with SIGKILL),
nothing it started survives.

Readiness (default: --ready=fd):
  --ready=fd               the procfix protocol: one JSON line on PROCFIX_READY_FD
  --ready=notify[:ADDR]    systemd NOTIFY_SOCKET, READY=1; ADDR is the endpoint to print
  --ready=line:REGEX       first stdout/stderr line matching REGEX; group 1 is the address
  --ready=socket[:ADDR]    socket activation: bind ADDR (default 127.0.0.1:0), pass it as fd 3
  --ready-timeout=MS       deadline for readiness (default 10000)
Stopping:
  --stop-signal=SIG        number or name (default TERM)
  --stop-grace=MS          wait before SIGKILL (default 5000)
  --expect-exit=N          the exit status that counts as clean (default 0);
                           also signal:SIG, or any
Process:
  --user=NAME              run the server as NAME (procfix-run must be root)
  --cwd=DIR                working directory of the server
  --env=NAME=VALUE         add to the server's environment (repeatable)
  --log-dir=DIR            also write the server's stdout/stderr to files in DIR
  --name=NAME              name in messages (default: the server's file name)
  --help                   this text

Exit status: 0 the server started, ran and stopped cleanly; 1 it misbehaved (needed SIGKILL,
unexpected exit status, died before the stop, leaked processes); 2 bad usage; 3 it did not
start (the reason, with the tail of its stderr, is on stderr).
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "procfix-run: " << message << "\nTry 'procfix-run --help'.\n";
  std::exit(kExitUsage);
}

long parse_number(std::string_view option, std::string_view text) {
  long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 0) {
    usage_error(std::string{option} + " needs a non-negative number, not '" + std::string{text} +
                "'");
  }
  return value;
}

int parse_signal(std::string_view option, std::string_view text) {
  if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
    const long value = parse_number(option, text);
    if (value >= 1 && value < NSIG) return static_cast<int>(value);
  }
  if (text.starts_with("SIG")) text.remove_prefix(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* name = ::sigabbrev_np(sig);
    if (name != nullptr && text == name) return sig;
  }
  usage_error(std::string{option} + ": '" + std::string{text} + "' is not a signal");
}

procfix::ServerOptions parse_arguments(int argc, char** argv) {
  using namespace std::chrono;
  procfix::ServerOptions options;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--help") {
      std::cout << kHelp;
      std::exit(kExitOk);
    }
    const std::size_t equals = arg.find('=');
    const std::string_view name = arg.substr(0, equals);
    if (equals == std::string_view::npos) usage_error("unknown option '" + std::string{arg} + "'");
    const std::string_view value = arg.substr(equals + 1);
    if (name == "--ready") {
      if (value == "fd") {
        options.readiness = procfix::Readiness::ready_fd();
      } else if (value == "notify" || value.starts_with("notify:")) {
        options.readiness = procfix::Readiness::notify_socket(
            value == "notify" ? std::string{} : std::string{value.substr(7)});
      } else if (value.starts_with("line:")) {
        options.readiness = procfix::Readiness::output_line(std::string{value.substr(5)});
      } else if (value == "socket" || value.starts_with("socket:")) {
        options.readiness = procfix::Readiness::socket_activation(
            value == "socket" ? "127.0.0.1:0" : std::string{value.substr(7)});
      } else {
        usage_error("--ready takes fd, notify[:ADDR], line:REGEX or socket[:ADDR], not '" +
                    std::string{value} + "'");
      }
    } else if (name == "--ready-timeout") {
      options.ready_timeout = milliseconds{parse_number(name, value)};
    } else if (name == "--stop-signal") {
      options.stop_signal = parse_signal(name, value);
    } else if (name == "--stop-grace") {
      options.stop_grace = milliseconds{parse_number(name, value)};
    } else if (name == "--expect-exit") {
      if (value == "any") {
        options.expected_exit = procfix::ExpectedExit::anything();
      } else if (value.starts_with("signal:")) {
        options.expected_exit = procfix::ExpectedExit::signal(parse_signal(name, value.substr(7)));
      } else {
        options.expected_exit =
            procfix::ExpectedExit::status(static_cast<int>(parse_number(name, value)));
      }
    } else if (name == "--user") {
      options.user = value;
    } else if (name == "--cwd") {
      options.working_directory = value;
    } else if (name == "--env") {
      const std::size_t inner = value.find('=');
      if (inner == std::string_view::npos || inner == 0) {
        usage_error("--env needs NAME=VALUE, not '" + std::string{value} + "'");
      }
      options.env[std::string{value.substr(0, inner)}] = value.substr(inner + 1);
    } else if (name == "--log-dir") {
      options.log_directory = value;
    } else if (name == "--name") {
      options.name = value;
    } else {
      usage_error("unknown option '" + std::string{name} + "'");
    }
  }
  if (i >= argc) usage_error("no server given: procfix-run [OPTION]... -- SERVER [ARG]...");
  options.executable = argv[i];
  for (++i; i < argc; ++i) options.args.emplace_back(argv[i]);
  return options;
}

json describe_exit(const procfix::ExitStatus& status) {
  if (status.is_exit()) return {{"status", status.code()}};
  return {{"signal", status.signal()}, {"signal_name", procfix::signal_name(status.signal())}};
}

// Blocks until stdin reaches EOF, SIGTERM/SIGINT arrives (on `signals`), or the server ends.
void wait_for_the_end(int signals, int server_ended) {
  bool stdin_open = true;
  for (;;) {
    pollfd fds[3] = {{stdin_open ? STDIN_FILENO : -1, POLLIN, 0},
                     {signals, POLLIN, 0},
                     {server_ended, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) continue;  // EINTR
    if (fds[1].revents != 0 || fds[2].revents != 0) return;
    if (fds[0].revents != 0) {
      char buffer[4096];
      const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
      if (n == 0) return;                               // EOF: the caller is done
      if (n < 0 && errno != EINTR) stdin_open = false;  // unreadable: wait for the others
    }
  }
}

// The fixtures' option errors name ServerOptions fields; say which command-line option it was.
std::string option_names(std::string message) {
  static constexpr std::pair<std::string_view, std::string_view> kNames[] = {
      {"ServerOptions: ", ""},
      {".ready_timeout", "--ready-timeout"},
      {".stop_grace", "--stop-grace"},
      {".stop_signal", "--stop-signal"},
      {".readiness output_line pattern", "--ready=line: pattern"},
      {".readiness socket_activation", "--ready=socket"},
      {".user", "--user"},
      {".env", "--env"},
  };
  for (const auto& [field, option] : kNames) {
    if (const std::size_t at = message.find(field); at != std::string::npos) {
      message.replace(at, field.size(), option);
    }
  }
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  procfix::ServerOptions options = parse_arguments(argc, argv);

  // SIGTERM/SIGINT end the wait, through a signalfd: blocked here, before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signals = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  ::signal(SIGPIPE, SIG_IGN);  // a caller that stopped reading must not kill us mid-stop

  std::optional<procfix::Server> server;
  try {
    server.emplace(std::move(options));
  } catch (const procfix::OptionsError& e) {
    usage_error(option_names(e.what()));
  } catch (const procfix::Error& e) {
    std::cerr << "procfix-run: " << e.what() << '\n';
    return kExitStartFailed;
  } catch (const std::exception& e) {
    std::cerr << "procfix-run: cannot start the server: " << e.what() << '\n';
    return kExitStartFailed;
  }

  json ready = {{"ready", true}, {"pid", server->pid()}};
  if (server->endpoint().has_address()) ready["address"] = server->endpoint().address();
  ready["message"] = server->endpoint().message();
  std::cout << ready.dump() << std::endl;  // one line, flushed

  wait_for_the_end(signals, server->exit_event_fd());

  const procfix::StopReport report = server->stop();
  json leaks = json::array();
  for (const procfix::LeakedProcess& leak : report.leaks) {
    leaks.push_back({{"pid", leak.pid}, {"command_line", leak.command_line}});
  }
  const json stopped = {
      {"stopped", true},
      {"ok", report.ok()},
      {"pid", report.pid},
      {"exit", describe_exit(report.status)},
      {"needed_kill", report.needed_kill},
      {"exited_before_stop", report.exited_before_stop},
      {"stop_ms", std::chrono::duration<double, std::milli>(report.stop_duration).count()},
      {"leaks", std::move(leaks)},
  };
  std::cout << stopped.dump() << std::endl;
  if (!report.ok()) std::cerr << "procfix-run: " << report.describe() << '\n';
  return report.ok() ? kExitOk : kExitMisbehaved;
}
