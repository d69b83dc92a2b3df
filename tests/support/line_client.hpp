// Test support: talk to a line-protocol server (sample_child) at a reported address. The one
// line client of the tests; addresses are parsed by procfix's one parser (detail/address.hpp).
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "detail/socket_address.hpp"

namespace procfix::testing {

// Connects a stream socket to "host:port", "[v6]:port", a unix path or "@name". Returns the
// socket, or -1 with errno set (EINVAL for an address that does not parse).
inline int connect_socket(const std::string& address) {
  std::string why;
  const auto target = procfix::detail::parse_socket_address(address, why);
  if (!target) {
    errno = EINVAL;
    return -1;
  }
  const int fd = ::socket(target->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  while (::connect(fd, target->get(), target->length) != 0) {
    if (errno == EINTR) continue;
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

// A blocking connection that sends lines and reads line replies. A reply that never comes fails
// the test after 30 s instead of hanging it (a bound, not a delay).
class LineClient {
 public:
  explicit LineClient(const std::string& address) : fd_{connect_socket(address)} {
    if (fd_ < 0) throw std::runtime_error{"connect to " + address + ": " + std::strerror(errno)};
    const timeval timeout{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  // From a procfix::Endpoint (anything with address()).
  template <class EndpointLike>
  requires requires(const EndpointLike& e) { std::string{e.address()}; }
  explicit LineClient(const EndpointLike& endpoint) : LineClient{std::string{endpoint.address()}} {}
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;
  ~LineClient() { ::close(fd_); }

  void send(std::string_view line) {
    const std::string data = std::string{line} + "\n";
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error{std::string{"send: "} + std::strerror(errno)};
      done += static_cast<std::size_t>(n);
    }
  }

  // The next line (without '\n'), or nullopt at EOF. Throws after the 30 s bound.
  std::optional<std::string> receive() {
    for (;;) {
      if (const std::size_t newline = buffer_.find('\n'); newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error{std::string{"recv: "} + std::strerror(errno)};
      if (n == 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // send() then receive(); "<EOF>" if the server closed the connection instead of replying.
  std::string exchange(std::string_view line) {
    send(line);
    return receive().value_or("<EOF>");
  }

 private:
  int fd_;
  std::string buffer_;
};

// One request, one reply, on a fresh connection.
template <class EndpointLike>
std::string exchange_line(const EndpointLike& endpoint, std::string_view line) {
  return LineClient{endpoint}.exchange(line);
}

}  // namespace procfix::testing
