// Test support: whether this process may run servers as other users.
#pragma once

#include <unistd.h>

#include <fstream>
#include <string>

namespace procfix::testing {

// Empty if servers can be run as another user (ServerOptions::user): the process is root and
// every uid is mapped. Otherwise why not, for GTEST_SKIP(): in a user namespace made with
// `unshare --user --map-root-user` (as sandboxes run tests) only root is mapped, so setuid() to
// any other user fails with EINVAL.
inline std::string why_users_cannot_be_switched() {
  if (::geteuid() != 0) return "needs root";
  std::ifstream map{"/proc/self/uid_map"};
  unsigned long inside = 0, outside = 0, count = 0;
  if (map >> inside >> outside >> count && inside == 0 && count == 4294967295UL) return {};
  return "runs a server as another user, but this user namespace maps only " +
         std::to_string(count) + " uid(s) (from " + std::to_string(outside) +
         "): setuid() to an unmapped user fails";
}

}  // namespace procfix::testing
