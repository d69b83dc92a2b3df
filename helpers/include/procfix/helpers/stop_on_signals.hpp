// StopOnSignals: turns SIGINT, SIGTERM or SIGQUIT into a std::stop_token for graceful shutdown.
//
//   boost::asio::io_context io;
//   procfix::StopOnSignals stop{io};      // first thing in main(), before threads start
//   procfix::WorkerGroup group{stop.token(), {.shutdown_deadline = 5s}};
//
// Process-wide state (POSIX signal dispositions are per process): at most one StopOnSignals may
// exist at a time; a second construction throws StopOnSignalsError. Construction installs
// Boost.Asio signal_set handlers (with SA_RESTART) for the chosen signals; from then on a signal
// is never lost, even if nobody looks at the token yet: it is queued and handled as soon as the
// io_context runs. No work happens inside the asynchronous signal handler: Asio's handler only
// writes the signal number to a pipe, and stop is requested from the thread running the
// io_context. Destruction restores the default dispositions (SIG_DFL).
//
// Children the server starts inherit neither the handlers (exec resets them) nor a blocked mask:
// this class blocks no signal.
#pragma once

#include <csignal>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <vector>

#include "procfix/helpers/export.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace procfix {

// Thrown when StopOnSignals cannot be constructed; what() says why.
class PROCFIX_HELPERS_API StopOnSignalsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PROCFIX_HELPERS_API StopOnSignalsOptions {
  // Signals that request stop. Default: SIGINT, SIGTERM, SIGQUIT. Must be non-empty, without
  // duplicates, and catchable (not SIGKILL/SIGSTOP); else StopOnSignalsError naming the field.
  std::vector<int> signals = {SIGINT, SIGTERM, SIGQUIT};
  // Default false: later signals are consumed and ignored while the shutdown proceeds. True: a
  // second signal from `signals` (any of them) ends the process at once with _exit(), skipping
  // destructors and cleanups (the operator's "I said stop").
  bool force_exit_on_second_signal = false;
  // Exit status used by force_exit_on_second_signal. Default: 128 + the second signal's number
  // (the shell convention, e.g. 143 for SIGTERM). Must be 0..255.
  std::optional<int> forced_exit_status{};
};

class PROCFIX_HELPERS_API StopOnSignals {
 public:
  // Handles the signals on the caller's io_context: stop is requested from whichever thread runs
  // `io`, so somebody must run it (signals stay queued until then). No thread is started. `io`
  // must outlive this object, and this object must be destroyed while no thread runs `io`.
  // Throws StopOnSignalsError if another StopOnSignals exists or the options are bad.
  explicit StopOnSignals(boost::asio::io_context& io, StopOnSignalsOptions options = {});

  // Handles the signals on a private io_context run by a private thread (one thread for the
  // object's lifetime). Use this when the program has no io_context of its own.
  // Throws StopOnSignalsError if another StopOnSignals exists or the options are bad.
  explicit StopOnSignals(StopOnSignalsOptions options = {});

  // Restores SIG_DFL for the handled signals; joins the private thread if any. noexcept.
  ~StopOnSignals();

  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;
  StopOnSignals(StopOnSignals&&) = delete;
  StopOnSignals& operator=(StopOnSignals&&) = delete;

  // Becomes "stop requested" when the first handled signal is processed (or request_stop() is
  // called). Thread-safe. Never blocks.
  [[nodiscard]] std::stop_token token() const noexcept;

  // The first signal that requested stop, or nullopt if none did (yet). Thread-safe.
  [[nodiscard]] std::optional<int> signal() const noexcept;

  // Requests stop without a signal (e.g. from a failing worker). Thread-safe. Stop callbacks on
  // token() run in the calling thread. A later signal counts as the first signal.
  void request_stop() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace procfix
