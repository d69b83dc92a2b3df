// Adversarial child for procfix-run: becomes ready with bytes that are not UTF-8.
//   cli_bad_utf8 line    prints "ready \xff\xfe at 127.0.0.1:1" on stdout (for --ready=line:)
//   cli_bad_utf8 notify  sends "STATUS=\xff\nREADY=1" to NOTIFY_SOCKET (for --ready=notify)
// Then waits for SIGTERM and exits 0.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "detail/unix_address.hpp"

int main(int argc, char** argv) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, nullptr);
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "line") {
    std::fputs("ready \xff\xfe at 127.0.0.1:1\n", stdout);
    std::fflush(stdout);
  } else if (mode == "notify") {
    const char* name = std::getenv("NOTIFY_SOCKET");
    const auto address = procfix::detail::unix_address(name == nullptr ? "" : name);
    if (!address) return 2;
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    constexpr std::string_view message = "STATUS=\xff\nREADY=1";
    if (::sendto(fd, message.data(), message.size(), 0, address->get(), address->length) < 0) {
      return 3;
    }
  } else {
    return 2;
  }
  int sig = 0;
  sigwait(&term, &sig);
  return 0;
}
