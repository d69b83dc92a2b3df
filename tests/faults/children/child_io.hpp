// What several adversarial children do the same way: write all bytes, send a datagram to
// NOTIFY_SOCKET, wait for SIGTERM. Failures end the child with a status the tests never expect.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "detail/unix_address.hpp"

namespace procfix::fault_child {

inline void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n <= 0) std::_Exit(3);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// One datagram to $NOTIFY_SOCKET (a path, or "@name" for an abstract socket).
inline void notify(std::string_view datagram) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr) std::_Exit(4);
  const auto address = procfix::detail::unix_address(name);
  if (!address) std::_Exit(4);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (::sendto(fd, datagram.data(), datagram.size(), 0, address->get(), address->length) < 0) {
    std::_Exit(5);
  }
  ::close(fd);
}

// Blocks SIGTERM, waits for it, exits 0.
[[noreturn]] inline void wait_for_sigterm() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int signal = 0;
  sigwait(&set, &signal);
  std::_Exit(0);
}

}  // namespace procfix::fault_child
