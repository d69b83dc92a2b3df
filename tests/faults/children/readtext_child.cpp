// Adversarial child for the readiness-text fault cases (tests/faults/readiness_text_test.cpp).
// readtext_child <mode> [n]: writes what the mode says, then waits for SIGTERM and exits 0.
//   long-line N     stdout: "listening on " + N 'x' + " at 127.0.0.1:5"
//   as-then-b N     stdout: N 'a' + "b", then "aaa"
//   burst MIB       stdout: MIB MiB of lines, "listening on 127.0.0.1:7", MIB MiB more
//   endless         stdout: 64 KiB without a newline every 2 ms, forever
//   utf8-line       stdout: "\xff\xfe ready at 127.0.0.1:5"
//   groups-v4/-v6   stdout: "bound host=127.0.0.1 port=4242" / "bound host=::1 port=4242"
//   buffered        stdout through stdio without a flush: "listening on 127.0.0.1:5"
//   ready-nul, ready-dup, ready-space, ready-zz   a bad readiness line on PROCFIX_READY_FD
//   ready-partial   "\xff\xfe{" on PROCFIX_READY_FD, then closes it
//   notify-status   "STATUS=\xff bad\nREADY=1" on NOTIFY_SOCKET
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "child_io.hpp"

namespace {

using procfix::fault_child::notify;
using procfix::fault_child::wait_for_sigterm;
using procfix::fault_child::write_all;

void ready_fd_line(std::string_view bytes) {
  const char* fd = std::getenv("PROCFIX_READY_FD");
  if (fd == nullptr) std::_Exit(4);
  write_all(std::atoi(fd), bytes);
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  const std::string mode = argc > 1 ? argv[1] : "";
  const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;

  if (mode == "long-line") {
    write_all(1, "listening on " + std::string(n, 'x') + " at 127.0.0.1:5\n");
  } else if (mode == "as-then-b") {
    write_all(1, std::string(n, 'a') + "b\naaa\n");
  } else if (mode == "burst") {
    std::string block;
    for (int i = 0; i < 16384; ++i)
      block += "noise line of 63 bytes .......................................\n";
    for (std::size_t i = 0; i < n; ++i) write_all(1, block);
    write_all(1, "listening on 127.0.0.1:7\n");
    for (std::size_t i = 0; i < n; ++i) write_all(1, block);
  } else if (mode == "endless") {
    const std::string chunk(64 * 1024, 'x');
    for (;;) write_all(1, chunk);  // the misbehaviour: as fast as the pipe takes it
  } else if (mode == "utf8-line") {
    write_all(1, "\xff\xfe ready at 127.0.0.1:5\n");
  } else if (mode == "groups-v4") {
    write_all(1, "bound host=127.0.0.1 port=4242\n");
  } else if (mode == "groups-v6") {
    write_all(1, "bound host=::1 port=4242\n");
  } else if (mode == "buffered") {
    std::printf("listening on 127.0.0.1:5\n");  // stdout is a pipe: block-buffered, never flushed
  } else if (mode == "ready-nul") {
    ready_fd_line(std::string_view{"{\"address\":\"127.0.0.1:5\"}\0junk\n", 31});
  } else if (mode == "ready-dup") {
    ready_fd_line("{\"address\":\"127.0.0.1:5\",\"address\":\"127.0.0.1:6\"}\n");
  } else if (mode == "ready-space") {
    ready_fd_line("{\"address\":\"a b:1\"}\n");
  } else if (mode == "ready-zz") {
    ready_fd_line("{\"address\":\"[zz]:80\"}\n");
  } else if (mode == "ready-partial") {
    ready_fd_line("\xff\xfe{");
    ::close(std::atoi(std::getenv("PROCFIX_READY_FD")));
  } else if (mode == "notify-status") {
    notify("STATUS=\xff bad\nREADY=1");
  } else {
    std::fprintf(stderr, "readtext_child: unknown mode '%s'\n", mode.c_str());
    return 2;
  }
  wait_for_sigterm();
}
