#include "procfix/helpers/worker_group.hpp"

#include <cxxabi.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <typeinfo>

namespace procfix {
namespace {

using Clock = std::chrono::steady_clock;

std::string single_quoted(std::string_view name) {
  return std::string{"'"}.append(name).append("'");
}

std::string demangled(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name{
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free};
  return status == 0 && name ? std::string{name.get()} : std::string{mangled};
}

std::string describe_exception(const std::exception_ptr& exception) {
  try {
    std::rethrow_exception(exception);
  } catch (const std::exception& e) {
    return demangled(typeid(e).name()) + ": " + e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

std::string describe_cause(const StopCause& cause) {
  switch (cause.kind) {
    case StopCause::Kind::none:
      return "stop was never requested";
    case StopCause::Kind::worker_failed:
      return "stop requested because worker " + single_quoted(cause.worker) + " failed";
    case StopCause::Kind::worker_returned:
      return "stop requested because worker " + single_quoted(cause.worker) + " returned";
    case StopCause::Kind::external_token:
      return "stop requested through the followed stop_token";
    case StopCause::Kind::request_stop:
      return "stop requested by WorkerGroup::request_stop()";
  }
  return "unknown stop cause";
}

}  // namespace

std::string GroupResult::describe() const {
  std::string text;
  if (failures.empty()) {
    text = "worker group ended cleanly";
  } else {
    text = "worker group failed: " + failures.front().message;
    for (std::size_t i = 1; i < failures.size(); ++i) text += "\n  then: " + failures[i].message;
  }
  text += "\n  " + describe_cause(stop_cause);
  if (!skipped_cleanups.empty()) {
    text += "\n  cleanups skipped because workers were still running:";
    for (const auto& name : skipped_cleanups) text.append(" ").append(single_quoted(name));
  }
  return text;
}

struct WorkerGroup::State {
  struct Worker {
    std::string name;
    bool ephemeral = false;
    bool ended = false;
    std::thread thread{};
    std::thread::id id{};
  };

  explicit State(WorkerGroupOptions opts) : options{std::move(opts)} {}

  // Requires `mutex` held. Returns true if the caller must now call source.request_stop().
  bool begin_stop_locked(StopCause cause) {
    if (stop_begun) return false;
    stop_begun = true;
    stop_time = Clock::now();
    stop_cause = std::move(cause);
    return true;
  }

  void begin_stop(StopCause cause) {
    std::string line;
    {
      const std::lock_guard lock{mutex};
      if (!begin_stop_locked(std::move(cause))) return;
      line = describe_cause(stop_cause);
    }
    changed.notify_all();
    log(line);
    source.request_stop();
  }

  void log(const std::string& line) noexcept {
    if (!options.log) return;
    const std::lock_guard lock{log_mutex};
    try {
      options.log(line);
    } catch (...) {
      // The hook must not throw; swallowing keeps the group's guarantees.
    }
  }

  void worker_main(std::size_t index, Body& body) {
    std::error_code code;
    std::exception_ptr exception;
    try {
      code = body(source.get_token());
    } catch (...) {
      exception = std::current_exception();
    }
    std::optional<Failure> failure;
    std::string name;
    bool ephemeral = false;
    {
      const std::lock_guard lock{mutex};
      name = workers[index].name;
      ephemeral = workers[index].ephemeral;
    }
    if (exception) {
      failure = Failure{
          .kind = Failure::Kind::exception,
          .name = name,
          .message = "worker " + single_quoted(name) + " threw " + describe_exception(exception),
          .exception = exception};
    } else if (code) {
      failure = Failure{.kind = Failure::Kind::error_code,
                        .name = name,
                        .message = "worker " + single_quoted(name) + " failed with error " +
                                   code.category().name() + ":" + std::to_string(code.value()) +
                                   " (" + code.message() + ")",
                        .code = code};
    }
    const std::string line =
        failure ? failure->message : "worker " + single_quoted(name) + " ended";
    bool must_request_stop = false;
    {
      const std::lock_guard lock{mutex};
      workers[index].ended = true;
      --running;
      if (!finishing) {
        if (failure) {
          failures.push_back(*failure);
          must_request_stop = begin_stop_locked({StopCause::Kind::worker_failed, name});
        } else if (!ephemeral) {
          must_request_stop = begin_stop_locked({StopCause::Kind::worker_returned, name});
        }
      }
    }
    log(line);
    if (must_request_stop) {
      log(describe_cause(stop_cause_snapshot()));
      source.request_stop();
    }
    changed.notify_all();
  }

  using Cleanups = std::vector<std::pair<std::string, std::function<void()>>>;
  struct Threads {
    std::vector<std::thread> to_join;    // of workers that ended
    std::vector<std::thread> to_detach;  // of workers still running past the deadline
  };

  // Requires `mutex` held.
  void throw_if_called_from_worker() const {
    const auto self = std::this_thread::get_id();
    for (const auto& worker : workers) {
      if (worker.id == self) {
        throw WorkerGroupError("WorkerGroup::wait called from worker " +
                               single_quoted(worker.name) + ", which would wait for itself");
      }
    }
  }

  // Waits (with `lock` on `mutex`) until every worker has ended, or the stop has begun and the
  // shutdown deadline passed. True if another wait() finished the group meanwhile (`result`).
  bool wait_until_stopped(std::unique_lock<std::mutex>& lock) {
    for (;;) {
      if (result) return true;
      if (finishing) {
        changed.wait(lock);
        continue;
      }
      if (running == 0) return false;
      if (!stop_begun) {
        changed.wait(lock);
        continue;
      }
      const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
          Clock::time_point::max() - stop_time);
      if (options.shutdown_deadline >= limit) {
        changed.wait(lock);  // milliseconds::max(): no deadline
        continue;
      }
      const auto deadline = stop_time + options.shutdown_deadline;
      if (Clock::now() >= deadline) return false;
      changed.wait_until(lock, deadline);
    }
  }

  // Requires `mutex` held. Takes the workers' threads; records a shutdown_timeout failure naming
  // those still running.
  Threads take_threads() {
    Threads threads;
    std::vector<std::string> overrunning;
    for (auto& worker : workers) {
      if (worker.ended) {
        threads.to_join.push_back(std::move(worker.thread));
      } else {
        overrunning.push_back(worker.name);
        threads.to_detach.push_back(std::move(worker.thread));
      }
    }
    if (!overrunning.empty()) {
      std::string message = "shutdown deadline of " +
                            std::to_string(options.shutdown_deadline.count()) + " ms passed with " +
                            std::to_string(overrunning.size()) +
                            (overrunning.size() == 1 ? " worker" : " workers") + " still running:";
      for (std::size_t i = 0; i < overrunning.size(); ++i) {
        message += (i == 0 ? " " : ", ") + single_quoted(overrunning[i]);
      }
      failures.push_back(Failure{.kind = Failure::Kind::shutdown_timeout,
                                 .workers = std::move(overrunning),
                                 .message = std::move(message)});
    }
    return threads;
  }

  // Runs the cleanups, last added first (without `mutex`); the failures of those that threw.
  std::vector<Failure> run_cleanups(Cleanups& to_run) {
    std::vector<Failure> cleanup_failures;
    for (auto it = to_run.rbegin(); it != to_run.rend(); ++it) {
      try {
        it->second();
      } catch (...) {
        const auto exception = std::current_exception();
        cleanup_failures.push_back(Failure{.kind = Failure::Kind::cleanup_exception,
                                           .name = it->first,
                                           .message = "cleanup " + single_quoted(it->first) +
                                                      " threw " + describe_exception(exception),
                                           .exception = exception});
        log(cleanup_failures.back().message);
      }
    }
    return cleanup_failures;
  }

  // The group's result, kept for later wait() calls.
  GroupResult publish_result(std::vector<Failure> cleanup_failures,
                             std::vector<std::string> skipped) {
    GroupResult group_result;
    const std::lock_guard lock{mutex};
    for (auto& failure : cleanup_failures) failures.push_back(std::move(failure));
    group_result.failures = failures;
    group_result.stop_cause = stop_cause;
    group_result.skipped_cleanups = std::move(skipped);
    result = group_result;
    return group_result;
  }

  StopCause stop_cause_snapshot() {
    const std::lock_guard lock{mutex};
    return stop_cause;
  }

  const WorkerGroupOptions options;
  std::stop_source source;

  mutable std::mutex mutex;
  std::condition_variable changed;
  std::vector<Worker> workers;
  std::size_t running = 0;
  bool stop_begun = false;
  Clock::time_point stop_time;
  StopCause stop_cause;
  std::vector<Failure> failures;
  Cleanups cleanups;
  bool finishing = false;  // one waiter is finishing the group
  std::optional<GroupResult> result;

  std::mutex log_mutex;
};

namespace {

void validate(const WorkerGroupOptions& options) {
  if (options.shutdown_deadline < std::chrono::milliseconds::zero()) {
    throw WorkerGroupError("WorkerGroupOptions::shutdown_deadline is " +
                           std::to_string(options.shutdown_deadline.count()) +
                           " ms; it must not be negative");
  }
}

}  // namespace

WorkerGroup::WorkerGroup(WorkerGroupOptions options) {
  validate(options);
  state_ = std::make_shared<State>(std::move(options));
}

WorkerGroup::WorkerGroup(std::stop_token follow, WorkerGroupOptions options)
    : WorkerGroup(std::move(options)) {
  follow_callback_ = std::make_unique<std::stop_callback<std::function<void()>>>(
      std::move(follow), std::function<void()>{[state = state_] {
        state->begin_stop({StopCause::Kind::external_token, {}});
      }});
}

WorkerGroup::~WorkerGroup() {
  follow_callback_.reset();
  try {
    bool waited = false;
    {
      const std::lock_guard lock{state_->mutex};
      waited = state_->result.has_value() || state_->finishing;
    }
    if (!waited) {
      request_stop();
      const GroupResult result = wait();
      if (!result.ok()) {
        state_->log("WorkerGroup destroyed without wait(): " + result.describe());
      }
    }
  } catch (...) {
    // noexcept destructor: e.g. destroyed from inside a worker; nothing more can be done.
  }
}

void WorkerGroup::start(std::string name, Body body, WorkerOptions options) {
  if (name.empty()) throw WorkerGroupError("WorkerGroup::run: the worker name is empty");
  {
    const std::lock_guard lock{state_->mutex};
    if (state_->result || state_->finishing) {
      throw WorkerGroupError("WorkerGroup::run cannot start worker " + single_quoted(name) +
                             ": wait() has already finished the group");
    }
    if (state_->stop_begun) {
      throw WorkerGroupError("WorkerGroup::run cannot start worker " + single_quoted(name) +
                             ": the group is stopping (" + describe_cause(state_->stop_cause) +
                             ")");
    }
    for (const auto& worker : state_->workers) {
      if (worker.name == name) {
        throw WorkerGroupError("WorkerGroup::run: a worker named " + single_quoted(name) +
                               " was already started in this group");
      }
    }
    const std::size_t index = state_->workers.size();
    state_->workers.push_back({.name = name, .ephemeral = options.ephemeral});
    try {
      state_->workers[index].thread =
          std::thread{[state = state_, index, body = std::move(body)]() mutable {
            state->worker_main(index, body);
          }};
    } catch (const std::system_error& e) {
      state_->workers.pop_back();
      throw WorkerGroupError("WorkerGroup::run cannot start a thread for worker " +
                             single_quoted(name) + ": " + e.what());
    }
    state_->workers[index].id = state_->workers[index].thread.get_id();
    ++state_->running;
  }
  state_->log("worker " + single_quoted(name) + " started");
}

void WorkerGroup::add_cleanup(std::string name, std::function<void()> cleanup) {
  if (name.empty()) throw WorkerGroupError("WorkerGroup::add_cleanup: the cleanup name is empty");
  const std::lock_guard lock{state_->mutex};
  if (state_->result || state_->finishing) {
    throw WorkerGroupError("WorkerGroup::add_cleanup cannot add cleanup " + single_quoted(name) +
                           ": wait() has already finished the group");
  }
  state_->cleanups.emplace_back(std::move(name), std::move(cleanup));
}

GroupResult WorkerGroup::wait() {
  State& s = *state_;
  State::Threads threads;
  State::Cleanups cleanups;
  {
    std::unique_lock lock{s.mutex};
    s.throw_if_called_from_worker();
    if (s.wait_until_stopped(lock)) return *s.result;
    s.finishing = true;
    threads = s.take_threads();
    cleanups = std::move(s.cleanups);
    s.cleanups.clear();
  }
  for (auto& thread : threads.to_join) {
    if (thread.joinable()) thread.join();
  }
  for (auto& thread : threads.to_detach) {
    if (thread.joinable()) thread.detach();
  }
  std::vector<std::string> skipped;
  std::vector<Failure> cleanup_failures;
  if (!threads.to_detach.empty()) {
    s.log([&] {
      const std::lock_guard lock{s.mutex};
      return s.failures.back().message;
    }());
    for (auto it = cleanups.rbegin(); it != cleanups.rend(); ++it) skipped.push_back(it->first);
  } else {
    cleanup_failures = s.run_cleanups(cleanups);
  }
  cleanups.clear();  // release what the cleanups captured, outside the lock
  GroupResult result = s.publish_result(std::move(cleanup_failures), std::move(skipped));
  s.changed.notify_all();
  return result;
}

void WorkerGroup::request_stop() noexcept {
  try {
    state_->begin_stop({StopCause::Kind::request_stop, {}});
  } catch (...) {
    // Only std::bad_alloc is possible; the stop itself cannot be lost: request it directly.
    state_->source.request_stop();
  }
}

bool WorkerGroup::stop_requested() const noexcept {
  return state_->source.stop_requested();
}

std::stop_token WorkerGroup::token() const noexcept {
  return state_->source.get_token();
}

}  // namespace procfix
