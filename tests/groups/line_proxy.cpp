// line_proxy: the smallest TCP proxy for the group examples. Listens on 127.0.0.1:0 and forwards
// every connection, both ways, to an upstream: "HOST:PORT" (numeric IPv4) or a unix socket path.
//   line_proxy --upstream=ADDRESS      or      line_proxy --config=FILE   (a line "upstream
//   ADDRESS")
// Announces readiness with procfix::notify_ready: {"address":"127.0.0.1:P","upstream":ADDRESS}.
// Exits 0 on SIGTERM or SIGINT. Single-threaded: one poll() over the listener, a signalfd and
// every connection pair.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "procfix/helpers/ready.hpp"

namespace {

[[noreturn]] void die(const std::string& what) {
  std::cerr << "line_proxy: " << what << ": " << std::strerror(errno) << std::endl;
  std::exit(1);
}

std::string upstream_from(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("--upstream=")) return arg.substr(11);
    if (arg.starts_with("--config=")) {
      std::ifstream config{arg.substr(9)};
      std::string key, value;
      if (config >> key >> value && key == "upstream") return value;
      errno = EINVAL;
      die("no line 'upstream ADDRESS' in " + arg.substr(9));
    }
  }
  errno = EINVAL;
  die("usage: line_proxy --upstream=HOST:PORT|PATH | --config=FILE");
}

int connect_upstream(const std::string& upstream) {
  if (upstream.find('/') != std::string::npos) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", upstream.c_str());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
    ::close(fd);
    return -1;
  }
  const std::size_t colon = upstream.rfind(':');
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(upstream.substr(colon + 1))));
  ::inet_pton(AF_INET, upstream.substr(0, colon).c_str(), &address.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
  ::close(fd);
  return -1;
}

int listen_on_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    die("cannot listen on 127.0.0.1");
  }
  port = ntohs(address.sin_port);
  return fd;
}

// Copies what `from` has to `to`; false when either side is done.
bool forward(int from, int to) {
  char buffer[16384];
  const ssize_t n = ::read(from, buffer, sizeof buffer);
  if (n <= 0) return false;
  for (ssize_t done = 0; done < n;) {
    const ssize_t w = ::send(to, buffer + done, static_cast<std::size_t>(n - done), MSG_NOSIGNAL);
    if (w <= 0) return false;
    done += w;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  procfix::take_ready_channels();
  const std::string upstream = upstream_from(argc, argv);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signals = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  std::uint16_t port = 0;
  const int listener = listen_on_loopback(port);
  (void)procfix::notify_ready(
      {.address = "127.0.0.1:" + std::to_string(port), .extra = {{"upstream", upstream}}});
  std::vector<pollfd> fds{{signals, POLLIN, 0}, {listener, POLLIN, 0}};  // then pairs
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) die("poll");
    if (fds[0].revents != 0) return 0;
    for (std::size_t i = 2; i < fds.size(); i += 2) {
      const bool ok = (fds[i].revents == 0 || forward(fds[i].fd, fds[i + 1].fd)) &&
                      (fds[i + 1].revents == 0 || forward(fds[i + 1].fd, fds[i].fd));
      if (ok) continue;
      ::close(fds[i].fd);
      ::close(fds[i + 1].fd);
      fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i),
                fds.begin() + static_cast<std::ptrdiff_t>(i + 2));
      i -= 2;
    }
    if (fds[1].revents != 0) {
      const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      const int server = client < 0 ? -1 : connect_upstream(upstream);
      if (server < 0) {
        if (client >= 0) ::close(client);
        std::cerr << "line_proxy: cannot reach the upstream " << upstream << std::endl;
        continue;
      }
      fds.push_back({client, POLLIN, 0});
      fds.push_back({server, POLLIN, 0});
    }
  }
}
