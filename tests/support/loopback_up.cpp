// The CTest setup test procfix.loopback_up: makes sure the loopback interface is up, so that tests
// can serve and connect on 127.0.0.1 and ::1 also in a fresh network namespace (`unshare --net`,
// as sandboxes run tests, starts with `lo` down; root of the namespace may bring it up).
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::fprintf(stderr, "loopback_up: socket: %s\n", std::strerror(errno));
    return 1;
  }
  ifreq request{};
  std::strcpy(request.ifr_name, "lo");
  if (::ioctl(fd, SIOCGIFFLAGS, &request) != 0) {
    std::fprintf(stderr, "loopback_up: no interface lo: %s\n", std::strerror(errno));
    return 1;
  }
  if ((request.ifr_flags & IFF_UP) != 0) {
    std::puts("loopback_up: lo is up");
    return 0;
  }
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(fd, SIOCSIFFLAGS, &request) != 0) {
    std::fprintf(stderr,
                 "loopback_up: lo is down and cannot be brought up (%s): the tests that serve or "
                 "connect on 127.0.0.1 cannot run in this network namespace\n",
                 std::strerror(errno));
    return 1;
  }
  std::puts("loopback_up: brought lo up");
  ::close(fd);
  return 0;
}
