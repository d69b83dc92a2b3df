// Whether the group demo's PostgreSQL can run here: built in (PROCFIX_GROUP_POSTGRES: root,
// procfix-test and PostgreSQL 15 at configure time, no sanitizer), and the test process may switch
// to procfix-test: root, in the initial user namespace (not `unshare --map-root-user`, where
// setgroups() is denied and procfix-test's uid is not mapped).
#pragma once

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace procfix::testing {

inline bool can_run_postgres() {
  if (PROCFIX_GROUP_POSTGRES == 0 || ::geteuid() != 0 || ::getpwnam("procfix-test") == nullptr) {
    return false;
  }
  std::ifstream map{"/proc/self/uid_map"};
  unsigned long inside = 1, outside = 1, count = 0;
  map >> inside >> outside >> count;
  return inside == 0 && outside == 0 && count == 4294967295UL;
}

}  // namespace procfix::testing
