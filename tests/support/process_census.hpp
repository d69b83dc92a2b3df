// Test support: what this process holds (open fds, child processes, memory).
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace procfix::testing {

struct ProcessCensus {
  int open_fds = 0;
  int children = 0;  // live or zombie, of all threads

  static ProcessCensus take() {
    ProcessCensus census;
    census.open_fds = count_entries("/proc/self/fd") - 1;  // minus the fd reading the directory
    const std::string tasks = "/proc/" + std::to_string(::getpid()) + "/task";
    if (DIR* dir = ::opendir(tasks.c_str())) {
      while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        std::ifstream file{tasks + "/" + entry->d_name + "/children"};
        long pid;
        while (file >> pid) ++census.children;
      }
      ::closedir(dir);
    }
    return census;
  }

  static int count_entries(const char* path) {
    int count = 0;
    if (DIR* dir = ::opendir(path)) {
      while (dirent* entry = ::readdir(dir)) count += entry->d_name[0] != '.';
      ::closedir(dir);
    }
    return count;
  }
};

// All descendants of `root`, breadth first (parents before their children).
inline std::vector<pid_t> descendants(pid_t root) {
  std::vector<pid_t> found{root};
  for (std::size_t i = 0; i < found.size(); ++i) {
    const std::string tasks = "/proc/" + std::to_string(found[i]) + "/task";
    if (DIR* dir = ::opendir(tasks.c_str())) {
      while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        std::ifstream file{tasks + "/" + entry->d_name + "/children"};
        for (long pid; file >> pid;) found.push_back(static_cast<pid_t>(pid));
      }
      ::closedir(dir);
    }
  }
  found.erase(found.begin());
  return found;
}

// VmRSS of this process in KiB.
inline long resident_kib() {
  std::ifstream status{"/proc/self/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

}  // namespace procfix::testing
