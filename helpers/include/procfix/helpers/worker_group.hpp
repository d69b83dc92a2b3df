// WorkerGroup: named worker threads that stop together and report what went wrong (an errgroup).
//
//   procfix::WorkerGroup group{stop.token(), {.shutdown_deadline = 5s}};
//   group.run("io", [&](std::stop_token st) { serve(io, st); });
//   group.add_cleanup("pid file", [&] { std::filesystem::remove(pid_file); });
//   procfix::GroupResult result = group.wait();
//   if (!result.ok()) std::cerr << result.describe() << '\n';
//
// Lifecycle. Each run() starts one std::thread. The group's stop is requested by the first of:
// a worker failing, a non-ephemeral worker returning, the followed external stop_token, or
// request_stop(). Workers see it on the std::stop_token they are given and must then return.
// wait() returns once every worker has ended, or once shutdown_deadline has passed since stop was
// requested (then a ShutdownTimeout failure names exactly the workers still running). Cleanups
// then run once, in reverse registration order.
//
// Workers are callables taking a std::stop_token (or nothing) and returning either void or
// std::error_code; an exception or a non-zero error_code is a failure. Exceptions never escape a
// worker thread (std::terminate is never called for them).
//
// Stuck workers: on ShutdownTimeout their threads are detached and keep running; the cleanups are
// NOT run (the stuck workers may still use what they would release) and are listed as skipped.
// The caller should then exit the process promptly with a non-zero status (std::_Exit or a return
// from main that does not destroy what the stuck threads use).
//
// Thread safety: every member function is thread-safe. wait() may be called from several threads
// and repeatedly; all get the same result. Calling wait() from inside a worker throws (it would
// wait for itself). Errors in using the group throw WorkerGroupError; outcomes come in GroupResult.
//
// WorkerGroupOptions, WorkerOptions and WorkerGroupError are in worker_group_options.hpp,
// GroupResult (Failure, StopCause) in worker_group_result.hpp; this header includes both.
#pragma once

#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "procfix/helpers/export.hpp"
#include "procfix/helpers/worker_group_options.hpp"
#include "procfix/helpers/worker_group_result.hpp"

namespace procfix {

class PROCFIX_HELPERS_API WorkerGroup {
 public:
  // A group that stops only by its own events (see the lifecycle above).
  // Throws WorkerGroupError naming a bad option field.
  explicit WorkerGroup(WorkerGroupOptions options = {});

  // A group that also stops when `follow` is stopped (e.g. StopOnSignals::token()). If `follow`
  // is already stopped, the group starts stopped.
  explicit WorkerGroup(std::stop_token follow, WorkerGroupOptions options = {});

  // If wait() was never called: requests stop and waits as wait() does (bounded by
  // shutdown_deadline), reporting failures through the log hook only. noexcept.
  ~WorkerGroup();

  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;
  WorkerGroup(WorkerGroup&&) = delete;
  WorkerGroup& operator=(WorkerGroup&&) = delete;

  // Starts `worker` on a new thread, named `name` in reports. Throws WorkerGroupError if the name
  // is empty or already used, if stop has already been requested ("the group is stopping"), or if
  // wait() already finished; std::system_error wrapped the same way if no thread can be started.
  // Does not block.
  template <typename F>
  void run(std::string name, F worker, WorkerOptions options = {});

  // Registers a cleanup run after all workers ended (reverse registration order, each once, in
  // the thread whose wait() call finishes the group). An exception from it becomes a
  // cleanup_exception failure; later cleanups still run. Throws WorkerGroupError if the name is
  // empty or wait() already finished.
  void add_cleanup(std::string name, std::function<void()> cleanup);

  // Blocks until every worker ended, or until shutdown_deadline passed after stop was requested;
  // then runs the cleanups. A group whose stop is never requested and whose workers never end
  // blocks forever: wait() is the server's "serve until told to stop". Idempotent; the same
  // result for every caller. Throws WorkerGroupError if called from one of the group's workers.
  GroupResult wait();

  // Requests stop for all workers (StopCause::request_stop unless stop was already requested).
  // Stop callbacks registered on workers' tokens run in the calling thread. Never blocks.
  void request_stop() noexcept;

  // True once stop was requested for whatever reason. Thread-safe.
  [[nodiscard]] bool stop_requested() const noexcept;

  // The token workers receive. Thread-safe.
  [[nodiscard]] std::stop_token token() const noexcept;

 private:
  struct State;
  using Body = std::function<std::error_code(std::stop_token)>;
  void start(std::string name, Body body, WorkerOptions options);

  std::shared_ptr<State> state_;
  std::unique_ptr<std::stop_callback<std::function<void()>>> follow_callback_;
};

template <typename F>
void WorkerGroup::run(std::string name, F worker, WorkerOptions options) {
  constexpr bool takes_token = std::is_invocable_v<F&, std::stop_token>;
  static_assert(takes_token || std::is_invocable_v<F&>,
                "a worker must be callable with a std::stop_token or with no argument");
  using Result = typename std::conditional_t<takes_token, std::invoke_result<F&, std::stop_token>,
                                             std::invoke_result<F&>>::type;
  static_assert(std::is_void_v<Result> || std::is_same_v<Result, std::error_code>,
                "a worker must return void or std::error_code");
  auto holder = std::make_shared<F>(std::move(worker));
  start(
      std::move(name),
      [holder](std::stop_token token) -> std::error_code {
        if constexpr (takes_token) {
          if constexpr (std::is_void_v<Result>) {
            std::invoke(*holder, std::move(token));
            return {};
          } else {
            return std::invoke(*holder, std::move(token));
          }
        } else {
          if constexpr (std::is_void_v<Result>) {
            std::invoke(*holder);
            return {};
          } else {
            return std::invoke(*holder);
          }
        }
      },
      options);
}

}  // namespace procfix
