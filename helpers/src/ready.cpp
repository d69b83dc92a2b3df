#include "procfix/helpers/ready.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#include "detail/unix_address.hpp"
#include "ready_internal.hpp"

namespace procfix {
namespace {

constexpr const char* kNotifySocketVariable = "NOTIFY_SOCKET";

struct ReadyState {
  std::mutex mutex;
  bool taken = false;
  bool notified = false;
  int ready_fd = -1;
  std::optional<std::string> notify_socket;  // as given: "/path" or "@abstract"
};

ReadyState& state() {
  static ReadyState instance;
  return instance;
}

std::string errno_text(int error) {
  return std::strerror(error);
}

// Parses PROCFIX_READY_FD strictly; throws ReadyError naming variable and value.
int parse_ready_fd(const char* value) {
  const std::string_view text{value};
  const std::string quoted = std::string{kReadyFdVariable} + "=\"" + std::string{text} + "\"";
  int fd = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), fd);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) {
    throw ReadyError("procfix readiness: " + quoted + " is not a decimal file descriptor number");
  }
  if (fd < 3) {
    throw ReadyError("procfix readiness: " + quoted +
                     " names a standard stream; the readiness fd must be 3 or higher");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags == -1) {
    throw ReadyError("procfix readiness: " + quoted + " names fd " + std::to_string(fd) +
                     ", which is not open in this process (" + errno_text(errno) + ")");
  }
  if ((flags & O_ACCMODE) == O_RDONLY) {
    throw ReadyError("procfix readiness: " + quoted + " names fd " + std::to_string(fd) +
                     ", which is open for reading only");
  }
  return fd;
}

std::string validate_notify_socket(const char* value) {
  const std::string text{value};
  const std::string quoted = std::string{kNotifySocketVariable} + "=\"" + text + "\"";
  if (text.size() < 2 || (text.front() != '/' && text.front() != '@')) {
    throw ReadyError("procfix readiness: " + quoted +
                     " is neither an absolute socket path nor an abstract '@name'");
  }
  if (!detail::unix_address(text)) {
    throw ReadyError("procfix readiness: " + quoted +
                     " is longer than a unix socket address allows");
  }
  return text;
}

// Requires state().mutex held.
void take_locked(ReadyState& s) {
  if (s.taken) return;
  const char* fd_value = std::getenv(std::string{kReadyFdVariable}.c_str());
  const char* socket_value = std::getenv(kNotifySocketVariable);
  // Validate everything before changing anything. Unset or empty: not started by a fixture.
  const int fd = fd_value != nullptr && *fd_value != '\0' ? parse_ready_fd(fd_value) : -1;
  std::optional<std::string> socket;
  if (socket_value != nullptr && *socket_value != '\0')
    socket = validate_notify_socket(socket_value);

  if (fd != -1) {
    const int fd_flags = ::fcntl(fd, F_GETFD);
    if (fd_flags == -1 || ::fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) == -1) {
      throw ReadyError("procfix readiness: cannot mark the readiness fd " + std::to_string(fd) +
                       " close-on-exec (" + errno_text(errno) + ")");
    }
  }
  ::unsetenv(std::string{kReadyFdVariable}.c_str());
  ::unsetenv(kNotifySocketVariable);
  s.ready_fd = fd;
  s.notify_socket = std::move(socket);
  s.taken = true;
}

// Writes all of `bytes` to `fd`; SIGPIPE-safe. Returns 0 or the errno of the failure.
int write_all_without_sigpipe(int fd, std::string_view bytes) {
  sigset_t sigpipe_only;
  sigemptyset(&sigpipe_only);
  sigaddset(&sigpipe_only, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  // A SIGPIPE already pending (blocked by the caller) is not ours to consume.
  const bool sigpipe_was_pending = sigismember(&pending, SIGPIPE) == 1;
  sigset_t old_mask;
  ::pthread_sigmask(SIG_BLOCK, &sigpipe_only, &old_mask);

  int result = 0;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // A non-blocking pipe: wait until the reader drains it. Bounded so that a reader that
      // never reads cannot hang the server forever.
      pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
      const int ready = ::poll(&p, 1, 60'000);
      if (ready == 0) {
        result = ETIMEDOUT;
        break;
      }
      if (ready < 0 && errno != EINTR) {
        result = errno;
        break;
      }
      continue;
    }
    result = errno;
    break;
  }

  if (result == EPIPE && !sigpipe_was_pending) {
    const timespec zero{0, 0};
    while (::sigtimedwait(&sigpipe_only, nullptr, &zero) == -1 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return result;
}

// Writes, closes the fd (always), throws on failure. Requires state().mutex held.
void write_and_close_locked(ReadyState& s, std::string_view bytes) {
  const int fd = s.ready_fd;
  s.ready_fd = -1;
  const int error = write_all_without_sigpipe(fd, bytes);
  ::close(fd);
  if (error == EPIPE) {
    throw ReadyError("procfix readiness: the reader of readiness fd " + std::to_string(fd) +
                     " has gone away (EPIPE); the fixture closed its end before the message");
  }
  if (error != 0) {
    throw ReadyError("procfix readiness: writing the ready message to fd " + std::to_string(fd) +
                     " failed: " + errno_text(error));
  }
}

// Sends one datagram to NOTIFY_SOCKET. Requires state().mutex held (for notify_socket).
void send_to_notify_socket(const std::string& socket_name, std::string_view datagram) {
  // validate_notify_socket() checked the length: never nullopt.
  const std::optional<detail::UnixAddress> address = detail::unix_address(socket_name);

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    throw ReadyError("procfix readiness: cannot create a socket for NOTIFY_SOCKET \"" +
                     socket_name + "\": " + errno_text(errno));
  }
  ssize_t sent = -1;
  do {
    sent = ::sendto(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL, address->get(),
                    address->length);
  } while (sent == -1 && errno == EINTR);
  const int error = errno;
  ::close(fd);
  if (sent == -1) {
    throw ReadyError("procfix readiness: sending \"" +
                     std::string{datagram.substr(0, datagram.find('\n'))} +
                     "\" to NOTIFY_SOCKET \"" + socket_name + "\" failed: " + errno_text(error));
  }
}

void check_status_text(std::string_view status) {
  if (status.find('\n') != std::string_view::npos) {
    throw ReadyError("procfix readiness: the STATUS text must not contain a newline");
  }
}

std::string build_ready_line(const ReadyMessage& message) {
  nlohmann::json object = nlohmann::json::object();
  if (!message.address.empty()) object["address"] = message.address;
  if (!message.extra.is_null()) {
    if (!message.extra.is_object()) {
      throw ReadyError(std::string{"procfix readiness: ReadyMessage::extra must be a JSON object, "
                                   "not "} +
                       message.extra.type_name());
    }
    for (const auto& [key, value] : message.extra.items()) {
      if (key == "address" && !message.address.empty()) {
        throw ReadyError(
            "procfix readiness: ReadyMessage::extra repeats the field \"address\", which "
            "ReadyMessage::address already sets");
      }
      object[key] = value;
    }
  }
  std::string line;
  try {
    line = object.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ReadyError(std::string{"procfix readiness: the ready message cannot be encoded as "
                                 "JSON: "} +
                     e.what());
  }
  line += '\n';
  if (line.size() > kMaxReadyLineBytes) {
    throw ReadyError("procfix readiness: the ready message is " + std::to_string(line.size()) +
                     " bytes including the newline; protocol v1 allows at most " +
                     std::to_string(kMaxReadyLineBytes));
  }
  return line;
}

}  // namespace

void take_ready_channels() {
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  take_locked(s);
}

ReadyOutcome notify_ready(const ReadyMessage& message) {
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  take_locked(s);
  if (s.notified) {
    throw ReadyError(
        "procfix readiness: notify_ready called twice; readiness was already notified");
  }
  check_status_text(message.status);
  const std::string line = build_ready_line(message);
  s.notified = true;

  ReadyOutcome outcome;
  if (s.ready_fd != -1) {
    write_and_close_locked(s, line);
    outcome.wrote_ready_fd = true;
  }
  if (s.notify_socket) {
    std::string datagram = "READY=1";
    if (!message.status.empty()) datagram += "\nSTATUS=" + message.status;
    send_to_notify_socket(*s.notify_socket, datagram);
    outcome.notified_socket = true;
  }
  return outcome;
}

void notify_status(std::string_view status) {
  check_status_text(status);
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  take_locked(s);
  if (s.notify_socket) send_to_notify_socket(*s.notify_socket, "STATUS=" + std::string{status});
}

void notify_stopping() {
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  take_locked(s);
  if (s.notify_socket) send_to_notify_socket(*s.notify_socket, "STOPPING=1");
}

namespace detail {

int ready_fd() noexcept {
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  return s.ready_fd;
}

bool write_raw_ready_bytes(std::string_view bytes) {
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  take_locked(s);
  s.notified = true;
  if (s.ready_fd == -1) return false;
  write_and_close_locked(s, bytes);
  return true;
}

bool close_ready_fd_without_message() noexcept {
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  s.notified = true;
  if (s.ready_fd == -1) return false;
  ::close(s.ready_fd);
  s.ready_fd = -1;
  return true;
}

void reset_ready_state_for_testing() noexcept {
  ReadyState& s = state();
  const std::lock_guard lock{s.mutex};
  if (s.ready_fd != -1) ::close(s.ready_fd);
  s.ready_fd = -1;
  s.taken = false;
  s.notified = false;
  s.notify_socket.reset();
}

}  // namespace detail
}  // namespace procfix
