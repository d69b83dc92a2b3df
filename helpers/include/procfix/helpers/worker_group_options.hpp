// WorkerGroup's options and its error: what a group and each worker are configured with, and what
// misuse of a group throws (worker_group.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string_view>

#include "procfix/helpers/export.hpp"

namespace procfix {

// Thrown for misuse of a WorkerGroup (bad options, bad names, run() after stop began, ...).
class PROCFIX_HELPERS_API WorkerGroupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PROCFIX_HELPERS_API WorkerGroupOptions {
  // How long workers may take to end once stop was requested. Default 5 s. Must be >= 0
  // (0: any worker still running when stop is requested overruns). milliseconds::max() waits
  // forever.
  std::chrono::milliseconds shutdown_deadline = std::chrono::seconds{5};
  // Optional logging hook, called with one line per event (worker started/ended/failed, stop
  // requested and why, deadline passed, cleanup failed). Default: none. Calls are serialised; they
  // come from worker threads and from wait(), never while the group's lock is held. Must not
  // throw (an exception from it is swallowed).
  std::function<void(std::string_view line)> log{};
};

struct PROCFIX_HELPERS_API WorkerOptions {
  // Default false: when the worker returns normally, stop is requested for the whole group.
  // True: a normal return just ends this worker (a one-shot task). Failures stop the group either
  // way.
  bool ephemeral = false;
};

}  // namespace procfix
