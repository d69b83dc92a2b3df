// Test support for the fault matrix: adversarial children and "is anything left?" checks.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace procfix::testing {

// The value of JUnit property `key` recorded so far in the running test, or "(missing)".
inline std::string recorded_property(const std::string& key) {
  const ::testing::TestResult& result =
      *::testing::UnitTest::GetInstance()->current_test_info()->result();
  for (int i = 0; i < result.test_property_count(); ++i) {
    if (result.GetTestProperty(i).key() == key) return result.GetTestProperty(i).value();
  }
  return "(missing)";
}

// The path of the adversarial child built from tests/faults/children/<name>.cpp.
inline std::string fault_child(const std::string& name) {
  return std::string{PROCFIX_FAULT_CHILD_DIR} + "/" + name;
}

// A string unique to this call, to put on an adversarial child's command line (or in its
// environment) so that its survivors can be found anywhere on the machine.
inline std::string unique_token(const std::string& prefix = "procfix-fault") {
  static std::mt19937_64 random{std::random_device{}()};
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(random());
}

// The contents of a /proc file, or "" if it cannot be read (a process may end while it is read:
// that is no error here).
inline std::string read_proc_text(const std::string& path) {
  std::string text;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char chunk[4096];
  for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) {
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

// Every live (non-zombie) process whose command line or environment contains `token`.
inline std::vector<pid_t> processes_with(const std::string& token) {
  std::vector<pid_t> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const std::string dir = std::string{"/proc/"} + entry->d_name;
    const std::string stat = read_proc_text(dir + "/stat");
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z') continue;
    for (const char* part : {"/cmdline", "/environ"}) {
      if (read_proc_text(dir + part).find(token) != std::string::npos) {
        found.push_back(static_cast<pid_t>(std::stol(entry->d_name)));
        break;
      }
    }
  }
  ::closedir(proc);
  return found;
}

// Looks for survivors carrying `token` repeatedly for `watch` (a process that lives only
// microseconds, such as a link of a fork chain, is seen by a scan only rarely). Returns the first
// ones found, or an empty vector if none appeared during the whole watch.
inline std::vector<pid_t> survivors_with(
    const std::string& token, std::chrono::milliseconds watch = std::chrono::milliseconds{500}) {
  const auto end = std::chrono::steady_clock::now() + watch;
  do {
    if (auto found = processes_with(token); !found.empty()) return found;
  } while (std::chrono::steady_clock::now() < end);
  return {};
}

// A fresh directory under /tmp (for state files and the like), removed with everything in it at
// the end. `prefix`: the start of its name, e.g. "procfix-shared-fault".
class StateDir {
 public:
  explicit StateDir(const std::string& prefix) {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
  }
  ~StateDir() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;
  std::string file(const std::string& name = "state.json") const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

}  // namespace procfix::testing
