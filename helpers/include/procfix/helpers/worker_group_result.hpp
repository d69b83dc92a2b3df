// What happened to a WorkerGroup (worker_group.hpp): its failures and why it stopped, a value that
// WorkerGroup::wait() returns.
#pragma once

#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include "procfix/helpers/export.hpp"

namespace procfix {

// One thing that went wrong, in the order it happened.
struct PROCFIX_HELPERS_API Failure {
  enum class Kind {
    exception,          // a worker threw; `exception` holds it
    error_code,         // a worker returned a non-zero std::error_code; `code` holds it
    shutdown_timeout,   // workers overran shutdown_deadline; `workers` names them
    cleanup_exception,  // a cleanup threw; `exception` holds it
  };
  Kind kind = Kind::exception;
  std::string name{};                  // the worker or cleanup; empty for shutdown_timeout
  std::vector<std::string> workers{};  // shutdown_timeout: the overrunning workers, in start order
  std::string message{};           // one sentence, e.g. "worker 'io' threw std::runtime_error: x"
  std::exception_ptr exception{};  // exception / cleanup_exception kinds
  std::error_code code{};          // error_code kind
};

// Why the group was asked to stop.
struct PROCFIX_HELPERS_API StopCause {
  enum class Kind {
    none,             // nothing asked (all workers ended while the group never stopped)
    worker_failed,    // `worker` failed
    worker_returned,  // non-ephemeral `worker` returned normally
    external_token,   // the stop_token passed to the constructor
    request_stop,     // WorkerGroup::request_stop() or the destructor
  };
  Kind kind = Kind::none;
  std::string worker{};  // for worker_failed / worker_returned
};

// What happened to the group; a value, returned by wait().
class [[nodiscard]] PROCFIX_HELPERS_API GroupResult {
 public:
  // True when nothing failed: no worker failed, no deadline passed, no cleanup threw.
  [[nodiscard]] bool ok() const noexcept { return failures.empty(); }
  // The first failure (the one that stopped the group, if a failure did), or nullptr if ok().
  [[nodiscard]] const Failure* first_failure() const noexcept {
    return failures.empty() ? nullptr : &failures.front();
  }
  // Human-readable summary: first line says ok or names the first failure; then every failure,
  // the stop cause and skipped cleanups, one per line.
  [[nodiscard]] std::string describe() const;

  std::vector<Failure> failures{};              // all failures, in the order they happened
  StopCause stop_cause{};                       // why stop was requested
  std::vector<std::string> skipped_cleanups{};  // not run because of a ShutdownTimeout
};

}  // namespace procfix
