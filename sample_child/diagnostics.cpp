#include "diagnostics.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>

namespace sample_child {
namespace {

using json = nlohmann::json;

bool has_argument(int argc, char** argv, std::string_view wanted) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == wanted) return true;
  }
  return false;
}

// Open fds, without the one used to read /proc/self/fd.
std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  const int own = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    int fd = -1;
    const std::string_view name{entry->d_name};
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (error == std::errc{} && end == name.data() + name.size() && fd != own) fds.push_back(fd);
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

// {"sigblk": ..., "sigign": ...} from /proc/self/status.
json signal_report() {
  json report = json::object();
  std::ifstream status{"/proc/self/status"};
  std::string line;
  while (std::getline(status, line)) {
    for (const auto& [key, field] : {std::pair{"SigBlk:", "sigblk"}, {"SigIgn:", "sigign"}}) {
      if (line.rfind(key, 0) == 0) {
        std::string value = line.substr(std::strlen(key));
        value.erase(0, value.find_first_not_of(" \t"));
        report[field] = value;
      }
    }
  }
  return report;
}

}  // namespace

Startup capture_startup(int argc, char** argv) {
  Startup startup;
  if (has_argument(argc, argv, "--report-fds")) startup.fds = open_fds();
  // Read before take_ready_channels() unsets it (for --notify-from-outside).
  const char* notify_variable = std::getenv("NOTIFY_SOCKET");
  startup.notify_socket = notify_variable != nullptr ? notify_variable : "";
  if (has_argument(argc, argv, "--report-signals")) startup.signals = signal_report();
  return startup;
}

json ready_fields(const Config& config, const Startup& startup) {
  json fields = config.extra;
  fields["pid"] = ::getpid();
  if (startup.fds) fields["fds"] = *startup.fds;
  if (startup.signals) fields.update(*startup.signals);
  if (!config.report_env.empty()) {
    json env = json::object();
    for (const auto& name : config.report_env) {
      const char* value = std::getenv(name.c_str());
      env[name] = value != nullptr ? json(value) : json(nullptr);
    }
    fields["env"] = std::move(env);
  }
  return fields;
}

}  // namespace sample_child
