// A stand-in for procfix-supervisor of another version (tests/faults/supervisor_version_test.cpp):
// sends $PROCFIX_FAKE_SUPERVISOR_HELLO as its first message on the lifeline (fd 3), then reads
// until the lifeline closes. Never spawns anything.
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>

int main() {
  if (const char* hello = std::getenv("PROCFIX_FAKE_SUPERVISOR_HELLO"); hello != nullptr) {
    if (::send(3, hello, std::strlen(hello), MSG_NOSIGNAL) < 0) return 3;
  }
  char message[256];
  while (::recv(3, message, sizeof message, 0) > 0) {
  }
  return 0;
}
