// sample_child: a small real TCP line server built on procfix::helpers, used by the test suites.
// Protocol and switches: see kUsage below and sample_child/README.md.
//
// Start-up is kept cheap (it is started thousands of times): no thread before readiness; the
// request workers (the threads running the io loop) are started by the WorkerGroup right after
// notify_ready().
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "procfix/helpers/address.hpp"
#include "procfix/helpers/ready.hpp"
#include "procfix/helpers/stop_on_signals.hpp"
#include "procfix/helpers/worker_group.hpp"
#include "ready_internal.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using json = nlohmann::json;

constexpr std::string_view kUsage = R"(usage: sample_child [OPTION]...
A small TCP line server for procfix tests. It reports readiness through PROCFIX_READY_FD and/or
NOTIFY_SOCKET (procfix::notify_ready), with the fields "address", "pid" and "ready_ns"
(CLOCK_MONOTONIC nanoseconds taken just before the write), then serves one request per line:
  ping          -> pong
  echo TEXT     -> TEXT
  pid           -> the server's pid
  work MS       -> done            (after MS milliseconds; timers, so requests run in parallel)
  work-ack MS   -> started, done   ("started" as soon as the request is received)
  spam-stdout N -> spammed         (after writing N bytes to stdout; blocks while the pipe is full)
  spam-stderr N -> spammed         (the same on stderr)
  anything else -> error unknown command: ...
On SIGTERM, SIGINT or SIGQUIT it closes the listening socket (new connections are refused),
sends STOPPING=1 to NOTIFY_SOCKET, finishes every request already received (and closes idle
connections), and exits 0. A second such signal exits at once with 128+signal. If draining
takes longer than the shutdown deadline it exits 1, naming the stuck worker on stderr.

Server:
  --listen=HOST:PORT         numeric address to bind; [v6]:PORT for IPv6 (default 127.0.0.1:0)
  --ipv6                     same as --listen=[::1]:0
  --listen-fds               socket activation: if LISTEN_FDS=1 and LISTEN_PID is this pid, use
                             fd 3 as the bound, listening socket instead of binding
  --shutdown-deadline=MS     drain limit after a stop signal (default 5000)
  --threads=N                request workers: threads running the io loop (default 2, 1..64)
  --help                     print this text and exit 0

Diagnostics (extra fields in the ready message):
  --report-fds               "fds": open fd numbers when main() started (what the spawner passed)
  --report-signals           "sigblk", "sigign": SigBlk and SigIgn of /proc/self/status, read
                             when main() started (before any signal set-up of sample_child)
  --report-env=NAME          "env": {"NAME": value or null}; may be repeated
  --extra-json=JSON          merge this JSON object into the message

Misbehaviour before readiness (in this order: delay, output, exit/signal, fork):
  --start-delay=MS           sleep MS milliseconds first
  --stderr-lines=N           write "sample_child stderr line K" for K = 1..N to stderr
  --stderr-bytes=N           write N bytes of text to stderr
  --stdout-bytes=N           write N bytes of text to stdout
  --exit-before-ready=N      exit with status N before readiness
  --signal-before-ready=SIG  raise SIG (number, or name like ABRT / SIGABRT) before readiness
                             (default action restored and unblocked first; exits 3 if it survives)
  --fork-holding-ready-fd    fork a child that inherits the ready fd and lives until sample_child
                             exits (it blocks reading a pipe only sample_child can write), so EOF
                             on the ready pipe comes only when sample_child exits

Misbehaviour of the ready message (the server keeps running):
  --never-ready              never write the ready message (still stops on SIGTERM)
  --close-without-message    close the ready fd without writing
  --malformed-json           write the line {"address": oops
  --no-address               write a valid message without "address"
  --oversized-message=BYTES  write one valid JSON line of BYTES bytes plus the newline
  --ready-line=stdout|stderr also print "sample_child listening on ADDR" there when ready

Misbehaviour after readiness:
  --leak-grandchild=setsid|daemon
                             fork a process that closes its fds >= 3, calls setsid() and lives
                             forever; "daemon" forks twice and the middle process exits. Its pid
                             is printed on stderr: "sample_child: leaked pid N"
  --ignore-sigterm           ignore SIGTERM (SIG_IGN); SIGINT and SIGQUIT still stop it
  --exit-on-sigterm=N        exit with status N at once on SIGTERM (no drain)
  --abort-on-sigterm         abort() at once on SIGTERM
  --abort-mid-request        abort() as soon as a work or work-ack request is received (after
                             "started" for work-ack), leaving that request without its reply
  --notify-from-outside      before readiness, a daemonised grandchild (no longer in this
                             server's process tree) sends READY=1 to NOTIFY_SOCKET; sample_child
                             goes on once it has sent (tests that the fixture ignores it)
  --leave-zombie             before readiness, fork a child that exits at once and is never
                             reaped (it is a zombie when the server is ready)
  --notify-status=TEXT       before readiness, sends STATUS=TEXT to NOTIFY_SOCKET (if set)
  --hang-in-shutdown         on a stop signal, hang past the shutdown deadline and stay hung until
                             SIGKILL (a second signal does not end it either)
Exit status: 0 after a clean drain, 1 on failure, 2 on bad usage, N/128+SIG as described above.
)";

struct Config {
  std::string listen = "127.0.0.1:0";
  bool listen_fds = false;
  std::chrono::milliseconds shutdown_deadline{5000};
  int threads = 2;  // --threads: the pool of request workers
  bool report_fds = false;
  bool report_signals = false;
  std::vector<std::string> report_env;
  json extra = json::object();
  std::optional<long> start_delay_ms;
  long stderr_lines = 0;
  long stderr_bytes = 0;
  long stdout_bytes = 0;
  std::optional<int> exit_before_ready;
  std::optional<int> signal_before_ready;
  bool fork_holding_ready_fd = false;
  bool never_ready = false;
  bool close_without_message = false;
  bool malformed_json = false;
  bool no_address = false;
  std::optional<long> oversized_message;
  std::string ready_line;       // "", "stdout" or "stderr"
  std::string leak_grandchild;  // "", "setsid" or "daemon"
  bool ignore_sigterm = false;
  std::optional<int> exit_on_sigterm;
  bool abort_on_sigterm = false;
  bool abort_mid_request = false;
  bool hang_in_shutdown = false;
  bool notify_from_outside = false;
  std::string notify_status;  // --notify-status: sent as STATUS= before readiness
  bool leave_zombie = false;  // --leave-zombie
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "sample_child: " << message << "\nTry 'sample_child --help'.\n";
  std::exit(2);
}

long parse_number(std::string_view option, std::string_view text, long min, long max) {
  long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < min ||
      value > max) {
    usage_error("option " + std::string{option} + " needs a number from " + std::to_string(min) +
                " to " + std::to_string(max) + ", not '" + std::string{text} + "'");
  }
  return value;
}

int parse_signal(std::string_view text) {
  if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
    return static_cast<int>(parse_number("--signal-before-ready", text, 1, NSIG - 1));
  }
  if (text.substr(0, 3) == "SIG") text.remove_prefix(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* name = ::sigabbrev_np(sig);
    if (name != nullptr && text == name) return sig;
  }
  usage_error("option --signal-before-ready needs a signal number or name, not '" +
              std::string{text} + "'");
}

Config parse_arguments(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg{argv[i]};
    const auto equals = arg.find('=');
    const std::string_view name = arg.substr(0, equals);
    const bool has_value = equals != std::string_view::npos;
    const std::string_view value = has_value ? arg.substr(equals + 1) : std::string_view{};
    auto need_value = [&] {
      if (!has_value) usage_error("option " + std::string{name} + " needs a value (NAME=VALUE)");
    };
    auto no_value = [&] {
      if (has_value) usage_error("option " + std::string{name} + " takes no value");
    };
    constexpr long kMaxMs = 24L * 3600 * 1000;
    constexpr long kMaxBytes = 1L << 40;
    if (name == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (name == "--listen") {
      need_value();
      config.listen = value;
    } else if (name == "--ipv6") {
      no_value();
      config.listen = "[::1]:0";
    } else if (name == "--listen-fds") {
      no_value();
      config.listen_fds = true;
    } else if (name == "--threads") {
      config.threads = static_cast<int>(parse_number(name, value, 1, 64));
    } else if (name == "--shutdown-deadline") {
      need_value();
      config.shutdown_deadline = std::chrono::milliseconds{parse_number(name, value, 0, kMaxMs)};
    } else if (name == "--report-fds") {
      no_value();
      config.report_fds = true;
    } else if (name == "--report-signals") {
      no_value();
      config.report_signals = true;
    } else if (name == "--report-env") {
      need_value();
      config.report_env.emplace_back(value);
    } else if (name == "--extra-json") {
      need_value();
      json extra = json::parse(value, nullptr, /*allow_exceptions=*/false);
      if (!extra.is_object()) usage_error("option --extra-json needs a JSON object");
      config.extra.update(extra);
    } else if (name == "--start-delay") {
      need_value();
      config.start_delay_ms = parse_number(name, value, 0, kMaxMs);
    } else if (name == "--stderr-lines") {
      need_value();
      config.stderr_lines = parse_number(name, value, 0, kMaxBytes);
    } else if (name == "--stderr-bytes") {
      need_value();
      config.stderr_bytes = parse_number(name, value, 0, kMaxBytes);
    } else if (name == "--stdout-bytes") {
      need_value();
      config.stdout_bytes = parse_number(name, value, 0, kMaxBytes);
    } else if (name == "--exit-before-ready") {
      need_value();
      config.exit_before_ready = static_cast<int>(parse_number(name, value, 0, 255));
    } else if (name == "--signal-before-ready") {
      need_value();
      config.signal_before_ready = parse_signal(value);
    } else if (name == "--fork-holding-ready-fd") {
      no_value();
      config.fork_holding_ready_fd = true;
    } else if (name == "--never-ready") {
      no_value();
      config.never_ready = true;
    } else if (name == "--close-without-message") {
      no_value();
      config.close_without_message = true;
    } else if (name == "--malformed-json") {
      no_value();
      config.malformed_json = true;
    } else if (name == "--no-address") {
      no_value();
      config.no_address = true;
    } else if (name == "--oversized-message") {
      need_value();
      config.oversized_message = parse_number(name, value, 1, 1L << 30);
    } else if (name == "--ready-line") {
      need_value();
      if (value != "stdout" && value != "stderr") {
        usage_error("option --ready-line needs stdout or stderr");
      }
      config.ready_line = value;
    } else if (name == "--leak-grandchild") {
      need_value();
      if (value != "setsid" && value != "daemon") {
        usage_error("option --leak-grandchild needs setsid or daemon");
      }
      config.leak_grandchild = value;
    } else if (name == "--ignore-sigterm") {
      no_value();
      config.ignore_sigterm = true;
    } else if (name == "--exit-on-sigterm") {
      need_value();
      config.exit_on_sigterm = static_cast<int>(parse_number(name, value, 0, 255));
    } else if (name == "--abort-on-sigterm") {
      no_value();
      config.abort_on_sigterm = true;
    } else if (name == "--abort-mid-request") {
      no_value();
      config.abort_mid_request = true;
    } else if (name == "--hang-in-shutdown") {
      no_value();
      config.hang_in_shutdown = true;
    } else if (name == "--notify-from-outside") {
      no_value();
      config.notify_from_outside = true;
    } else if (name == "--leave-zombie") {
      no_value();
      config.leave_zombie = true;
    } else if (name == "--notify-status") {
      config.notify_status = std::string{value};
    } else {
      usage_error("unknown option '" + std::string{arg} + "'");
    }
  }
  return config;
}

bool has_argument(int argc, char** argv, std::string_view wanted) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == wanted) return true;
  }
  return false;
}

// Open fds, without the one used to read /proc/self/fd.
std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  const int own = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    int fd = -1;
    const std::string_view name{entry->d_name};
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (error == std::errc{} && end == name.data() + name.size() && fd != own) fds.push_back(fd);
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

// {"sigblk": ..., "sigign": ...} from /proc/self/status.
json signal_report() {
  json report = json::object();
  std::ifstream status{"/proc/self/status"};
  std::string line;
  while (std::getline(status, line)) {
    for (const auto& [key, field] : {std::pair{"SigBlk:", "sigblk"}, {"SigIgn:", "sigign"}}) {
      if (line.rfind(key, 0) == 0) {
        std::string value = line.substr(std::strlen(key));
        value.erase(0, value.find_first_not_of(" \t"));
        report[field] = value;
      }
    }
  }
  return report;
}

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void spam(int fd, long bytes) {
  std::string chunk;
  for (int i = 0; chunk.size() < 64 * 1024; ++i) {
    chunk += "sample_child spam " + std::to_string(i % 1000000) + " ................\n";
  }
  while (bytes > 0) {
    const auto n = std::min<long>(bytes, static_cast<long>(chunk.size()));
    write_all(fd, std::string_view{chunk}.substr(0, static_cast<std::size_t>(n)));
    bytes -= n;
  }
}

std::int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// --fork-holding-ready-fd: a child that keeps the inherited ready fd open until we exit.
void fork_ready_fd_holder() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::perror("sample_child: pipe2");
    std::exit(1);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("sample_child: fork");
    std::exit(1);
  }
  if (pid == 0) {
    ::close(pipe_fds[1]);
    char byte;
    while (::read(pipe_fds[0], &byte, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);  // the write end closed: sample_child has exited
  }
  ::close(pipe_fds[0]);  // keep pipe_fds[1] (CLOEXEC) open until we exit
}

// --leak-grandchild: a process that outlives us. Single-threaded caller (before the io thread).
// --notify-from-outside: a daemonised grandchild, re-parented out of this server's process tree,
// sends "READY=1" to NOTIFY_SOCKET (an impostor the fixture must ignore); returns after it sent.
void notify_from_outside(const std::string& notify_socket) {
  if (notify_socket.empty()) usage_error("--notify-from-outside needs NOTIFY_SOCKET");
  int sent[2];
  if (::pipe2(sent, O_CLOEXEC) != 0) return;
  const pid_t middle = ::fork();
  if (middle == 0) {
    const pid_t self = ::getpid();
    if (::fork() == 0) {
      // Wait until the middle process has exited, so we are no longer in the server's tree
      // (pidfd_open fails if it is already gone).
      const int parent = static_cast<int>(::syscall(SYS_pidfd_open, self, 0));
      if (parent >= 0) {
        pollfd gone{parent, POLLIN, 0};
        ::poll(&gone, 1, -1);
      }
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      std::memcpy(address.sun_path, notify_socket.data(), notify_socket.size());
      if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
      const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      const auto length =
          static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + notify_socket.size());
      ::sendto(fd, "READY=1", 7, 0, reinterpret_cast<sockaddr*>(&address), length);
      write_all(sent[1], "x");
      ::_exit(0);
    }
    ::_exit(0);
  }
  ::close(sent[1]);
  ::waitpid(middle, nullptr, 0);
  char byte;
  (void)!::read(sent[0], &byte, 1);  // returns once the impostor has sent (or died)
  ::close(sent[0]);
}

// --leave-zombie: a child that has exited and is never reaped. WNOWAIT waits for its exit
// without reaping it, so it is a zombie from here on.
void leave_zombie() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  if (pid < 0) {
    std::perror("sample_child: fork");
    return;
  }
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
}

void leak_grandchild(const std::string& mode) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("sample_child: fork");
    return;
  }
  auto become_leaked = [] {
    for (const int sig : {SIGINT, SIGTERM, SIGQUIT}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::close_range(3, ~0U, 0);
    ::setsid();
    char text[64];
    const int n = std::snprintf(text, sizeof text, "sample_child: leaked pid %d\n",
                                static_cast<int>(::getpid()));
    if (n > 0) write_all(2, std::string_view{text, static_cast<std::size_t>(n)});
    for (;;) ::pause();
  };
  if (pid == 0) {
    if (mode == "setsid") become_leaked();
    ::setsid();
    const pid_t grandchild = ::fork();
    if (grandchild == 0) become_leaked();
    ::_exit(grandchild < 0 ? 1 : 0);
  }
  if (mode == "daemon") {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

tcp::endpoint parse_listen(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string::npos) usage_error("--listen needs [V6ADDRESS]:PORT, not " + text);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) usage_error("--listen needs HOST:PORT, not " + text);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) usage_error("--listen needs a numeric address, not '" + host + "'");
  return {address, static_cast<unsigned short>(parse_number("--listen", port, 0, 65535))};
}

// A listening socket passed by socket activation, or nullopt.
std::optional<int> take_activated_socket() {
  constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START
  const char* fds = std::getenv("LISTEN_FDS");
  const char* pid = std::getenv("LISTEN_PID");
  const bool ours = fds != nullptr && pid != nullptr && std::string_view{fds} == "1" &&
                    std::string_view{pid} == std::to_string(::getpid());
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDNAMES");
  if (!ours) {
    std::cerr << "sample_child: --listen-fds: no socket passed (LISTEN_FDS=1 and LISTEN_PID="
              << ::getpid() << " expected); binding instead\n";
    return std::nullopt;
  }
  ::fcntl(kListenFdsStart, F_SETFD, FD_CLOEXEC);
  return kListenFdsStart;
}

class Server;

// One client connection. Its socket and timer live on a strand of their own, so its handlers
// never run concurrently, while the pool of request workers serves other connections.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, tcp::socket socket)
      : server_{server}, socket_{std::move(socket)}, timer_{socket_.get_executor()} {}

  void start() { read_next(); }
  asio::any_io_executor executor() { return socket_.get_executor(); }
  // From any thread, once draining: closes the connection unless a request is in flight (that
  // one closes after its reply, in read_next()).
  void close_if_idle() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->close();
    });
  }
  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void read_next();
  void handle_line(std::string line);
  void reply(std::string text);
  void finish();

  static constexpr std::size_t kMaxLine = 64 * 1024;
  Server& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string input_;
  std::string output_;
  bool busy_ = false;
  bool finished_ = false;
};

class Server {
 public:
  Server(asio::io_context& io, tcp::acceptor acceptor, const Config& config)
      : io_{io}, acceptor_{std::move(acceptor)}, config_{config} {}

  void start() { accept_next(); }

  bool draining() const { return draining_.load(); }
  const Config& config() const { return config_; }

  // Called on the acceptor's strand once stop is requested.
  void begin_shutdown() {
    if (draining_.exchange(true)) return;
    boost::system::error_code ignored;
    acceptor_.close(ignored);  // from now on connect() is refused
    try {
      procfix::notify_stopping();
    } catch (const std::exception& e) {
      std::cerr << "sample_child: " << e.what() << '\n';
    }
    std::lock_guard lock{mutex_};
    for (const auto& connection : connections_) connection->close_if_idle();
    stop_when_drained();
  }

  // From a connection's strand, when it has closed.
  void remove(const std::shared_ptr<Connection>& connection) {
    std::lock_guard lock{mutex_};
    connections_.erase(connection);
    if (draining_) stop_when_drained();
  }

  // The acceptor's strand: accepting and the start of the shutdown never overlap.
  asio::strand<asio::io_context::executor_type>& strand() { return strand_; }

 private:
  void accept_next() {
    // Each connection gets a strand of its own; this handler runs on the acceptor's strand.
    acceptor_.async_accept(
        asio::make_strand(io_),
        asio::bind_executor(
            strand_, [this](const boost::system::error_code& ec, tcp::socket socket) {
              if (ec) {
                if (ec == asio::error::operation_aborted || draining_) return;
                std::cerr << "sample_child: accept failed: " << ec.message() << '\n';
              } else {
                ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);  // Asio does not set it
                auto connection = std::make_shared<Connection>(*this, std::move(socket));
                {
                  std::lock_guard lock{mutex_};
                  connections_.insert(connection);
                }
                asio::post(connection->executor(), [connection] { connection->start(); });
              }
              accept_next();
            }));
  }

  // With mutex_ held.
  void stop_when_drained() {
    if (connections_.empty()) io_.stop();  // ends every request worker, which ends the group
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  const Config& config_;
  asio::strand<asio::io_context::executor_type> strand_{asio::make_strand(io_)};
  std::mutex mutex_;
  std::set<std::shared_ptr<Connection>> connections_;  // guarded by mutex_
  std::atomic<bool> draining_{false};
};

void Connection::read_next() {
  const auto newline = input_.find('\n');
  if (newline != std::string::npos) {
    std::string line = input_.substr(0, newline);
    input_.erase(0, newline + 1);
    handle_line(std::move(line));
    return;
  }
  if (server_.draining()) {  // idle while draining: nothing in flight
    finish();
    return;
  }
  asio::async_read_until(
      socket_, asio::dynamic_buffer(input_, kMaxLine), '\n',
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
        if (ec == asio::error::not_found) {
          self->input_.clear();
          self->reply("error line longer than 65536 bytes");
          self->finished_ = true;  // close after that reply
          return;
        }
        if (ec) {
          self->finish();
          return;
        }
        self->read_next();
      });
}

void Connection::handle_line(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  busy_ = true;
  const auto space = line.find(' ');
  const std::string command = line.substr(0, space);
  const std::string argument = space == std::string::npos ? "" : line.substr(space + 1);
  if (command == "ping") {
    reply("pong");
  } else if (command == "echo") {
    reply(argument);
  } else if (command == "pid") {
    reply(std::to_string(::getpid()));
  } else if (command == "work" || command == "work-ack") {
    long ms = -1;
    const auto [end, error] =
        std::from_chars(argument.data(), argument.data() + argument.size(), ms);
    if (argument.empty() || error != std::errc{} || end != argument.data() + argument.size() ||
        ms < 0) {
      reply("error " + command + " needs a number of milliseconds");
      return;
    }
    auto run_work = [self = shared_from_this(), ms] {
      if (self->server_.config().abort_mid_request) std::abort();
      self->timer_.expires_after(std::chrono::milliseconds{ms});
      self->timer_.async_wait([self](const boost::system::error_code&) { self->reply("done"); });
    };
    if (command == "work") {
      run_work();
      return;
    }
    output_ = "started\n";
    asio::async_write(
        socket_, asio::buffer(output_),
        [self = shared_from_this(), run_work](const boost::system::error_code& ec, std::size_t) {
          if (ec) {
            self->finish();
            return;
          }
          run_work();
        });
  } else if (command == "spam-stdout" || command == "spam-stderr") {
    long bytes = -1;
    const auto [end, error] =
        std::from_chars(argument.data(), argument.data() + argument.size(), bytes);
    if (argument.empty() || error != std::errc{} || end != argument.data() + argument.size() ||
        bytes < 0) {
      reply("error " + command + " needs a number of bytes");
      return;
    }
    spam(command == "spam-stdout" ? 1 : 2, bytes);  // blocking: an undrained pipe stalls us
    reply("spammed");
  } else {
    reply("error unknown command: " + command);
  }
}

void Connection::reply(std::string text) {
  output_ = std::move(text) + "\n";
  asio::async_write(socket_, asio::buffer(output_),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->busy_ = false;
                      if (ec || self->finished_) {
                        self->finish();
                        return;
                      }
                      self->read_next();
                    });
}

void Connection::finish() {
  close();
  finished_ = true;
  busy_ = false;
  server_.remove(shared_from_this());
}

tcp::acceptor make_acceptor(asio::io_context& io, const Config& config) {
  if (config.listen_fds) {
    if (const auto fd = take_activated_socket()) {
      sockaddr_storage address{};
      socklen_t length = sizeof address;
      if (::getsockname(*fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        std::perror("sample_child: --listen-fds: getsockname on fd 3");
        std::exit(1);
      }
      return tcp::acceptor{io, address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), *fd};
    }
  }
  const tcp::endpoint endpoint = parse_listen(config.listen);
  try {
    tcp::acceptor acceptor{io, endpoint, /*reuse_addr=*/true};
    ::fcntl(acceptor.native_handle(), F_SETFD, FD_CLOEXEC);  // Asio does not set it
    return acceptor;
  } catch (const boost::system::system_error& e) {
    std::cerr << "sample_child: cannot listen on " << config.listen << ": " << e.code().message()
              << '\n';
    std::exit(1);
  }
}

// Writes the ready message as configured; returns false if the run must end (error printed).
void announce_ready(const Config& config, const std::string& address, json fields) {
  if (config.never_ready) return;
  try {
    if (config.close_without_message) {
      procfix::detail::close_ready_fd_without_message();
      return;
    }
    if (config.malformed_json) {
      (void)procfix::detail::write_raw_ready_bytes("{\"address\": oops\n");
      return;
    }
    if (config.oversized_message) {
      json message = fields;
      message["address"] = address;
      message["ready_ns"] = monotonic_ns();
      const auto wanted = static_cast<std::size_t>(*config.oversized_message);
      const std::size_t base = message.dump().size() + std::string_view{",\"pad\":\"\""}.size();
      message["pad"] = std::string(wanted > base ? wanted - base : 0, 'x');
      (void)procfix::detail::write_raw_ready_bytes(message.dump() + "\n");
      return;
    }
    fields["ready_ns"] = monotonic_ns();
    (void)procfix::notify_ready(
        {.address = config.no_address ? std::string{} : address, .extra = std::move(fields)});
  } catch (const std::exception& e) {
    std::cerr << "sample_child: " << e.what() << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Captured before anything else can change them.
  std::optional<std::vector<int>> initial_fds;
  if (has_argument(argc, argv, "--report-fds")) initial_fds = open_fds();
  // Read before take_ready_channels() unsets it (for --notify-from-outside).
  const char* notify_variable = std::getenv("NOTIFY_SOCKET");
  const std::string notify_socket_at_start = notify_variable != nullptr ? notify_variable : "";
  std::optional<json> initial_signals;
  if (has_argument(argc, argv, "--report-signals")) initial_signals = signal_report();

  const Config config = parse_arguments(argc, argv);
  try {
    procfix::take_ready_channels();
  } catch (const std::exception& e) {
    std::cerr << "sample_child: " << e.what() << '\n';
    return 1;
  }

  if (config.start_delay_ms)
    std::this_thread::sleep_for(std::chrono::milliseconds{*config.start_delay_ms});
  for (long k = 1; k <= config.stderr_lines; ++k) {
    write_all(2, "sample_child stderr line " + std::to_string(k) + "\n");
  }
  if (config.stderr_bytes > 0) spam(2, config.stderr_bytes);
  if (config.stdout_bytes > 0) spam(1, config.stdout_bytes);
  if (config.exit_before_ready) std::exit(*config.exit_before_ready);
  if (config.signal_before_ready) {
    const int sig = *config.signal_before_ready;
    ::signal(sig, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::raise(sig);
    std::cerr << "sample_child: survived signal " << sig << " raised before readiness\n";
    return 3;
  }
  if (config.fork_holding_ready_fd) fork_ready_fd_holder();
  if (config.notify_from_outside) notify_from_outside(notify_socket_at_start);
  if (!config.notify_status.empty()) procfix::notify_status(config.notify_status);
  if (config.leave_zombie) leave_zombie();

  // Stop signals stay blocked in every thread but the last request worker, which unblocks them
  // while it runs the io loop, idle in epoll_wait or in Asio's wait for work: a delivery
  // interrupts either at once, and Asio's handler runs. (A signal that lands on a thread busy
  // elsewhere can be held back indefinitely under ThreadSanitizer, which defers signals until the
  // thread's next intercepted call.) Signals that arrive before the workers start stay pending and
  // are not lost.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGINT, SIGTERM, SIGQUIT}) sigaddset(&stop_signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  asio::io_context io{config.threads};
  procfix::StopOnSignalsOptions signal_options{.force_exit_on_second_signal =
                                                   !config.hang_in_shutdown};
  if (config.ignore_sigterm) {
    ::signal(SIGTERM, SIG_IGN);
    signal_options.signals = {SIGINT, SIGQUIT};
  }
  procfix::StopOnSignals stop{io, signal_options};
  // Runs on a request worker when the first stop signal is handled.
  std::stop_callback on_signal{stop.token(), [&stop, &config] {
                                 if (stop.signal() != SIGTERM) return;
                                 if (config.abort_on_sigterm) std::abort();
                                 if (config.exit_on_sigterm) std::_Exit(*config.exit_on_sigterm);
                               }};

  tcp::acceptor acceptor = make_acceptor(io, config);
  const std::string address = procfix::to_address(acceptor.local_endpoint());
  Server server{io, std::move(acceptor), config};

  json fields = config.extra;
  fields["pid"] = ::getpid();
  if (initial_fds) fields["fds"] = *initial_fds;
  if (initial_signals) fields.update(*initial_signals);
  if (!config.report_env.empty()) {
    json env = json::object();
    for (const auto& name : config.report_env) {
      const char* value = std::getenv(name.c_str());
      env[name] = value != nullptr ? json(value) : json(nullptr);
    }
    fields["env"] = std::move(env);
  }
  announce_ready(config, address, std::move(fields));
  if (!config.ready_line.empty()) {
    (config.ready_line == "stdout" ? std::cout : std::cerr)
        << "sample_child listening on " << address << std::endl;
  }
  if (!config.leak_grandchild.empty()) leak_grandchild(config.leak_grandchild);

  procfix::WorkerGroup group{stop.token(), {.shutdown_deadline = config.shutdown_deadline}};
  server.start();
  // The io worker starts last: it runs the signal handling, so the group cannot be stopping
  // before every worker was started (run() would throw).
  if (config.hang_in_shutdown) {
    group.run("hang-in-shutdown", [](std::stop_token token) {
      std::mutex mutex;
      std::condition_variable_any stopped;
      std::unique_lock lock{mutex};
      stopped.wait(lock, token, [] { return false; });
      std::promise<void> never;
      never.get_future().wait();  // never ready: hangs until SIGKILL
    });
  }

  // The pool of request workers: each runs the io loop. Stop signals are unblocked only in the
  // last one started, once it runs the loop (see above): no signal can stop the group before
  // every worker was started, and Asio's handler runs at once.
  std::stop_callback shutdown{
      group.token(), [&] { asio::post(server.strand(), [&] { server.begin_shutdown(); }); }};
  for (int i = 0; i < config.threads; ++i) {
    group.run("io-" + std::to_string(i + 1),
              [&io, &stop_signals, unblock = i == config.threads - 1] {
                if (unblock) ::pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
                io.run();
              });
  }
  const procfix::GroupResult result = group.wait();
  if (result.ok()) return 0;
  std::cerr << "sample_child: " << result.describe() << '\n';
  if (config.hang_in_shutdown) {
    std::cerr << "sample_child: --hang-in-shutdown: staying hung until killed\n";
    std::promise<void> never;
    never.get_future().wait();
  }
  std::fflush(nullptr);
  ::_exit(1);  // stuck threads may still use io and server: skip destructors
}
