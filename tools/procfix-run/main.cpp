// procfix-run: start any server exactly as the fixtures do, for test suites in any language.
// See docs/cli.md and `procfix-run --help`.
//
// main() makes fds 0, 1 and 2 valid, parses the command line (options.cpp), and runs the server
// in a worker process under a front process that owns stdout and the stop signals (front.cpp).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "detail/write_all.hpp"
#include "front.hpp"
#include "options.hpp"
#include "procfix/fixtures/server.hpp"
#include "report.hpp"
#include "shared.hpp"

namespace {

using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitMisbehaved = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStartFailed = procfix::run::kExitStartFailed;

int usage_error(const std::string& message) {
  std::cerr << "procfix-run: " << message << "\nTry 'procfix-run --help'.\n";
  return kExitUsage;
}

// Opens /dev/null onto each of fds 0, 1, 2 that is closed, before anything else gets an fd (a
// signalfd or a pipe must never become "stdin"). Returns whether stdin was closed.
bool make_standard_fds_valid() {
  bool stdin_closed = false;
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    if (fd == 0) stdin_closed = true;
    const int opened = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);  // lowest free: fd
    if (opened != fd) std::_Exit(kExitStartFailed);                         // cannot happen
  }
  return stdin_closed;
}

// Every JSON line procfix-run prints: bytes that are not UTF-8 become U+FFFD instead of throwing.
std::string to_line(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

void write_line(int fd, const json& value) {
  procfix::detail::write_all(fd,
                             to_line(value));  // false: the reader went away, nothing more to do
}

// Blocks until stdin reaches EOF (if it is watched), SIGTERM/SIGINT arrives (on `signals`), or
// the server ends. Returns what it was, for the report's "cause".
std::string wait_for_the_end(bool watch_stdin, int signals, int server_ended) {
  for (;;) {
    pollfd fds[3] = {{watch_stdin ? STDIN_FILENO : -1, POLLIN, 0},
                     {signals, POLLIN, 0},
                     {server_ended, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) continue;  // EINTR
    if (fds[1].revents != 0) {
      signalfd_siginfo info{};
      if (::read(signals, &info, sizeof info) != sizeof info) return "signal";
      return procfix::signal_name(static_cast<int>(info.ssi_signo));
    }
    if (fds[2].revents != 0) return "server exited";
    if (fds[0].revents != 0) {
      char buffer[4096];
      const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
      if (n == 0) return "stdin EOF";                    // the caller is done
      if (n < 0 && errno != EINTR) watch_stdin = false;  // unreadable: wait for the others
    }
  }
}

// The worker: starts the server, reports it ready on `lines`, waits, stops it, reports that.
int run_server(procfix::ServerOptions options, bool watch_stdin, int lines) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  const int signals = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);

  std::optional<procfix::Server> server;
  try {
    server.emplace(std::move(options));
  } catch (const procfix::OptionsError& e) {
    return usage_error(procfix::run::with_option_names(e));
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
  write_line(lines, ready);

  const std::string cause = wait_for_the_end(watch_stdin, signals, server->exit_event_fd());

  const procfix::StopReport report = server->stop();
  const json stopped = procfix::run::stopped_line(report, cause, /*details=*/false);
  write_line(lines, stopped);
  if (!report.ok()) std::cerr << "procfix-run: " << report.describe() << '\n';
  return report.ok() ? kExitOk : kExitMisbehaved;
}

}  // namespace

int main(int argc, char** argv) {
  const bool stdin_closed = make_standard_fds_valid();
  if (auto shared = procfix::run::run_shared_mode(argc, argv)) return *shared;  // shared.hpp
  procfix::run::CommandLine line;
  try {
    line = procfix::run::parse_command_line(argc, argv);
  } catch (const procfix::run::UsageError& e) {
    return usage_error(e.what());
  }
  if (line.help) {
    std::cout << procfix::run::help_text() << procfix::run::shared_help_text();
    return kExitOk;
  }
  // SIGTERM/SIGINT are read through signalfds: blocked here, before any thread or child starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a caller that stopped reading must not kill us mid-stop
  return procfix::run::run_in_worker(
      [&](int lines) { return run_server(std::move(line.server), !stdin_closed, lines); });
}
