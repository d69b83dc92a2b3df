#include "server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "detail/address.hpp"
#include "misbehaviour.hpp"
#include "procfix/helpers/address.hpp"
#include "procfix/helpers/ready.hpp"
#include "procfix/helpers/stop_on_signals.hpp"
#include "procfix/helpers/worker_group.hpp"

namespace sample_child {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using json = nlohmann::json;

// --listen: a numeric "HOST:PORT" or "[V6]:PORT" (port 0: any), by procfix's one address parser.
tcp::endpoint parse_listen(const std::string& text) {
  using procfix::detail::Address;
  std::string why;
  const std::optional<Address> address =
      procfix::detail::parse_address(text, why, /*allow_port_zero=*/true);
  if (!address)
    usage_error("--listen needs HOST:PORT or [V6ADDRESS]:PORT, not " + text + ": " + why);
  if (address->kind != Address::Kind::ipv4 && address->kind != Address::Kind::ipv6) {
    usage_error("--listen needs a numeric address, not '" + address->host + "'");
  }
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address->host, ec);
  if (ec) usage_error("--listen needs a numeric address, not '" + address->host + "'");
  return {ip, address->port};
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

// The non-negative decimal `text`, or -1 if it is not one.
long non_negative_number(const std::string& text) {
  long value = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < 0) {
    return -1;
  }
  return value;
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
    const long ms = non_negative_number(argument);
    if (ms < 0) {
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
    const long bytes = non_negative_number(argument);
    if (bytes < 0) {
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

// Stop signals stay blocked in every thread but the last request worker, which unblocks them
// while it runs the io loop, idle in epoll_wait or in Asio's wait for work: a delivery
// interrupts either at once, and Asio's handler runs. (A signal that lands on a thread busy
// elsewhere can be held back indefinitely under ThreadSanitizer, which defers signals until the
// thread's next intercepted call.) Signals that arrive before the workers start stay pending and
// are not lost. Returns the blocked set.
sigset_t block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGINT, SIGTERM, SIGQUIT}) sigaddset(&stop_signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

procfix::StopOnSignalsOptions stop_signal_options(const Config& config) {
  procfix::StopOnSignalsOptions signal_options{.force_exit_on_second_signal =
                                                   !config.hang_in_shutdown};
  if (config.ignore_sigterm) {
    ::signal(SIGTERM, SIG_IGN);
    signal_options.signals = {SIGINT, SIGQUIT};
  }
  return signal_options;
}

[[noreturn]] void hang_until_killed() {
  std::promise<void> never;
  never.get_future().wait();  // never ready: hangs until SIGKILL
  std::abort();
}

// The workers: --hang-in-shutdown's, then the pool of request workers, each running the io loop.
// Stop signals are unblocked only in the last one started, once it runs the loop (see
// block_stop_signals()): no signal can stop the group before every worker was started (run()
// would throw), and Asio's handler runs at once.
void run_workers(procfix::WorkerGroup& group, asio::io_context& io, const Config& config,
                 const sigset_t& stop_signals) {
  if (config.hang_in_shutdown) {
    group.run("hang-in-shutdown", [](std::stop_token token) {
      std::mutex mutex;
      std::condition_variable_any stopped;
      std::unique_lock lock{mutex};
      stopped.wait(lock, token, [] { return false; });
      hang_until_killed();
    });
  }
  for (int i = 0; i < config.threads; ++i) {
    group.run("io-" + std::to_string(i + 1),
              [&io, &stop_signals, unblock = i == config.threads - 1] {
                if (unblock) ::pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
                io.run();
              });
  }
}

}  // namespace

int serve(const Config& config, json fields) {
  const sigset_t stop_signals = block_stop_signals();
  asio::io_context io{config.threads};
  procfix::StopOnSignals stop{io, stop_signal_options(config)};
  // Runs on a request worker when the first stop signal is handled.
  std::stop_callback on_signal{stop.token(), [&stop, &config] {
                                 if (stop.signal() != SIGTERM) return;
                                 if (config.abort_on_sigterm) std::abort();
                                 if (config.exit_on_sigterm) std::_Exit(*config.exit_on_sigterm);
                               }};

  tcp::acceptor acceptor = make_acceptor(io, config);
  const std::string address = procfix::to_address(acceptor.local_endpoint());
  Server server{io, std::move(acceptor), config};

  announce_ready(config, address, std::move(fields));
  if (!config.ready_line.empty()) {
    (config.ready_line == "stdout" ? std::cout : std::cerr)
        << "sample_child listening on " << address << std::endl;
  }
  if (!config.leak_grandchild.empty()) leak_grandchild(config.leak_grandchild);

  procfix::WorkerGroup group{stop.token(), {.shutdown_deadline = config.shutdown_deadline}};
  server.start();
  std::stop_callback shutdown{
      group.token(), [&] { asio::post(server.strand(), [&] { server.begin_shutdown(); }); }};
  run_workers(group, io, config, stop_signals);
  const procfix::GroupResult result = group.wait();
  if (result.ok()) return 0;
  std::cerr << "sample_child: " << result.describe() << '\n';
  if (config.hang_in_shutdown) {
    std::cerr << "sample_child: --hang-in-shutdown: staying hung until killed\n";
    hang_until_killed();
  }
  std::fflush(nullptr);
  ::_exit(1);  // stuck threads may still use io and server: skip destructors
}

}  // namespace sample_child
