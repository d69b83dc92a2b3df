#include "benchmarks.hpp"

#include <benchmark/benchmark.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "detail/unique_fd.hpp"
#include "procfix/fixtures/server.hpp"
#include "results.hpp"
#include "support.hpp"

namespace procfix::bench {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSampleChild = PROCFIX_SAMPLE_CHILD;
constexpr const char* kSyscallProbe = PROCFIX_SYSCALL_PROBE;

// Every row runs sample_child with one request worker, its lightest form: the floor is as low as
// it gets, so procfix's own costs weigh the most in the ratios.
std::vector<std::string> child_args(std::vector<std::string> args = {}) {
  args.insert(args.begin(), "--threads=1");
  return args;
}
constexpr int kWaitDelayMs = 1000;  // how long the child delays readiness in the wait rows
constexpr int kSuiteCycles = 20;    // start + ping + stop cycles in one example suite

// ---------------------------------------------------------------------------------------------
// Small RAII helpers.

using Fd = procfix::detail::UniqueFd;

// A hand-spawned child: killed (SIGKILL) and reaped if the benchmark throws before stopping it.
class RawChild {
 public:
  explicit RawChild(pid_t pid) : pid_{pid} {}
  RawChild(RawChild&& other) noexcept : pid_{std::exchange(other.pid_, -1)} {}
  RawChild& operator=(RawChild&&) = delete;
  ~RawChild() {
    if (pid_ > 0) kill_and_reap(pid_);
  }
  pid_t pid() const { return pid_; }
  void request_stop() const { ::kill(pid_, SIGTERM); }
  void reap() { reap_expecting_success(std::exchange(pid_, -1)); }
  void terminate() {
    request_stop();
    reap();
  }

 private:
  pid_t pid_;
};

// Memory allocated and touched (every page written), held while a benchmark runs.
class TouchedMemory {
 public:
  explicit TouchedMemory(std::size_t bytes) : data_{new char[bytes]} {
    std::memset(data_.get(), 1, bytes);
    benchmark::DoNotOptimize(data_.get());
    benchmark::ClobberMemory();
  }

 private:
  std::unique_ptr<char[]> data_;
};

// Samples of one benchmark call, under "<prefix><key>": added to the process-wide store (for
// the table) and published as Google Benchmark counters for this call (p50; durations in µs).
class Recorder {
 public:
  Recorder(benchmark::State& state, std::string prefix)
      : state_{state}, prefix_{std::move(prefix)} {}
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  ~Recorder() {
    if (state_.error_occurred()) return;
    for (const auto& [key, values] : local_) {
      std::string name = key;
      std::replace(name.begin(), name.end(), '.', '_');
      if (counts_.contains(key)) {
        state_.counters[name] = values.max();
      } else if (key.ends_with("paired_ratio")) {
        state_.counters[name] = values.median();
      } else if (key.ends_with("total") || key.ends_with("latency") ||
                 key.ends_with("window_cpu")) {
        state_.counters[name + "_us"] = values.median() / 1e3;
      }
    }
  }

  // A duration in nanoseconds, or a ratio.
  void add(const std::string& key, double value) {
    samples(prefix_ + key).add(value);
    local_[key].add(value);
  }

  // A count (fds, processes); the counter shows the largest.
  void count(const std::string& key, double value) {
    counts_.insert(key);
    add(key, value);
  }

 private:
  benchmark::State& state_;
  std::string prefix_;
  std::map<std::string, Samples> local_;
  std::set<std::string> counts_;
};

// ---------------------------------------------------------------------------------------------
// procfix set-up.

enum class Launch { supervised, in_process };

// PROCFIX_LAUNCHER is read at each spawn.
void use_launcher(Launch launch) {
  if (launch == Launch::in_process) {
    ::setenv("PROCFIX_LAUNCHER", "in-process", 1);
  } else {
    ::unsetenv("PROCFIX_LAUNCHER");
  }
}

ServerOptions sample_options(std::vector<std::string> args = {},
                             std::chrono::milliseconds ready_timeout = 30s) {
  return {.executable = kSampleChild,
          .args = child_args(std::move(args)),
          .ready_timeout = ready_timeout,
          .stop_grace = 5s};
}

void expect_clean(const StopReport& report) {
  if (!report.ok()) throw std::runtime_error{report.describe()};
}

std::int64_t ready_ns_of(const Server& server) {
  return server.endpoint().message().value("ready_ns", std::int64_t{0});
}

// Children of this process that are not its procfix-supervisor, plus the supervisor's children:
// what a stopped batch of servers left behind (live or zombie).
std::size_t children_left() {
  std::size_t count = 0;
  for (const pid_t child : children_of_self()) {
    if (is_supervisor(child)) {
      count += children_of(child).size();
    } else {
      ++count;
    }
  }
  return count;
}

Command listening_command(std::uint16_t port, int start_delay_ms = -1) {
  std::vector<std::string> args{"--listen=127.0.0.1:" + std::to_string(port)};
  if (start_delay_ms >= 0) args.push_back("--start-delay=" + std::to_string(start_delay_ms));
  return Command{kSampleChild, child_args(std::move(args)), false};
}

double since(std::int64_t from, std::int64_t to) {
  return static_cast<double>(to - from);
}

// ---------------------------------------------------------------------------------------------
// Interleaving. Each iteration runs every variant once, back to back, in a rotating order, and
// records each one's metrics plus its "paired_ratio": its "total" divided by the floor's (the
// first variant) in the same iteration. Work elsewhere on the machine then hits all variants
// alike, and the median paired ratio stays meaningful when absolute figures swing.

using Metrics = std::map<std::string, double>;  // "total" is required

struct Variant {
  std::string name;
  std::function<Metrics()> run;
};

void interleaved(benchmark::State& state, const std::string& group,
                 const std::vector<Variant>& variants, bool warm_up = true) {
  if (warm_up) {
    for (const Variant& v : variants) (void)v.run();
  }
  Recorder record{state, group + "."};
  const std::size_t n = variants.size();
  std::size_t rotation = 0;
  for (auto _ : state) {
    std::vector<Metrics> results(n);
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (rotation + k) % n;
      results[i] = variants[i].run();
    }
    ++rotation;
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double floor = results[0].at("total");
      for (const auto& [metric, value] : results[i]) {
        if (metric.starts_with("count_")) {
          record.count(variants[i].name + "." + metric.substr(6), value);
        } else {
          record.add(variants[i].name + "." + metric, value);
        }
      }
      record.add(variants[i].name + ".paired_ratio", results[i].at("total") / floor);
      sum += results[i].at("total");
    }
    state.SetIterationTime(sum / 1e9);
  }
}

// ---------------------------------------------------------------------------------------------
// 1, 3, 6, 7: one server, start → ready → stop.

Metrics raw_cycle(SpawnMethod method) {
  static const Command command{kSampleChild, child_args(), true};
  const std::int64_t t0 = monotonic_ns();
  const RawPipe pipe = make_raw_pipe();
  Fd read_end{pipe.read};
  Fd write_end{pipe.write};
  RawChild child{spawn_raw(method, command, write_end.get())};
  const std::int64_t spawned = monotonic_ns();
  write_end.reset();
  std::int64_t t1 = 0;
  const std::string line = read_line_blocking(read_end.get(), &t1);
  const bool same_cpu = ::sched_getcpu() == last_cpu_of(child.pid());  // not timed
  const std::int64_t t1b = monotonic_ns();
  read_end.reset();
  child.terminate();
  const std::int64_t t2 = monotonic_ns() - (t1b - t1);
  const double latency = since(procfix::bench::ready_ns_of(line), t1);
  return {{"total", since(t0, t2)},
          {"start", since(t0, t1)},
          {"spawn", since(t0, spawned)},  // pipe2 + the spawn call returned
          {"stop", since(t1, t2)},
          {"latency", latency},
          {same_cpu ? "latency_same_cpu" : "latency_other_cpu", latency}};
}

Metrics procfix_cycle(Launch launch) {
  use_launcher(launch);
  const ServerOptions options = sample_options();
  const std::int64_t t0 = monotonic_ns();
  std::int64_t t1 = 0;
  std::int64_t ready_ns = 0;
  bool same_cpu = false;
  std::int64_t untimed = 0;
  {
    Server server{options};
    t1 = monotonic_ns();
    same_cpu = ::sched_getcpu() == last_cpu_of(server.pid());  // not timed
    ready_ns = ready_ns_of(server);
    untimed = monotonic_ns() - t1;
    expect_clean(server.stop());
  }
  const std::int64_t t2 = monotonic_ns() - untimed;
  const double latency = since(ready_ns, t1);
  return {{"total", since(t0, t2)},
          {"start", since(t0, t1)},
          {"stop", since(t1, t2)},
          {"latency", latency},
          {same_cpu ? "latency_same_cpu" : "latency_other_cpu", latency}};
}

std::vector<Variant> cycle_variants() {
  return {{"raw_posix_spawn", [] { return raw_cycle(SpawnMethod::posix_spawn); }},
          {"raw_fork_exec", [] { return raw_cycle(SpawnMethod::fork_exec); }},
          {"procfix_supervised", [] { return procfix_cycle(Launch::supervised); }},
          {"procfix_in_process", [] { return procfix_cycle(Launch::in_process); }}};
}

constexpr std::size_t kBigBytes = std::size_t{1} << 30;

void big_cycles(benchmark::State& state) {
  const TouchedMemory memory{kBigBytes};  // held for the whole benchmark
  interleaved(state, "big", cycle_variants());
}

// ---------------------------------------------------------------------------------------------
// 10: Readiness::listen() against ready_fd, and what its seccomp filter costs every system call
// inside the server.

Metrics mode_cycle(bool listen_mode) {
  use_launcher(Launch::supervised);
  ServerOptions options = sample_options({"--listen=127.0.0.1:0"});
  if (listen_mode) options.readiness = procfix::Readiness::listen();
  const std::int64_t t0 = monotonic_ns();
  std::int64_t t1 = 0;
  {
    Server server{options};
    t1 = monotonic_ns();
    expect_clean(server.stop());
  }
  const std::int64_t t2 = monotonic_ns();
  return {{"total", since(t0, t2)}, {"start", since(t0, t1)}, {"stop", since(t1, t2)}};
}

// "total": ns per getppid() in procfix_syscall_probe, started with or without the filter.
Metrics syscall_cost(bool listen_mode) {
  use_launcher(Launch::supervised);
  ServerOptions options{
      .executable = kSyscallProbe, .args = {"200000"}, .ready_timeout = 30s, .stop_grace = 5s};
  if (listen_mode) options.readiness = procfix::Readiness::listen();
  Server server{options};
  expect_clean(server.stop());
  const std::string out = server.stdout_tail();
  const std::size_t at = out.find("getppid_ns ");
  if (at == std::string::npos) throw std::runtime_error{"syscall probe printed: " + out};
  return {{"total", std::stod(out.substr(at + 11))}};
}

// ---------------------------------------------------------------------------------------------
// 1: the baselines procfix replaces.

Metrics polling_cycle(std::chrono::milliseconds interval) {
  const std::uint16_t port = pick_free_port();
  const Command command = listening_command(port);
  const std::int64_t t0 = monotonic_ns();
  RawChild child{spawn_raw(SpawnMethod::posix_spawn, command, -1)};
  Fd connection{connect_by_polling(port, interval, 30s)};
  const std::int64_t t1 = monotonic_ns();
  connection.reset();
  child.terminate();
  const std::int64_t t2 = monotonic_ns();
  return {{"total", since(t0, t2)}, {"start", since(t0, t1)}, {"stop", since(t1, t2)}};
}

Metrics sleep_cycle() {
  const std::uint16_t port = pick_free_port();
  const Command command = listening_command(port);
  const std::int64_t t0 = monotonic_ns();
  RawChild child{spawn_raw(SpawnMethod::posix_spawn, command, -1)};
  std::this_thread::sleep_for(2s);  // the measured strategy: "it is surely up by now"
  Fd connection{try_connect(port)};
  if (!connection) throw std::runtime_error{"sample_child was not listening after sleep(2)"};
  const std::int64_t t1 = monotonic_ns();
  connection.reset();
  child.terminate();
  const std::int64_t t2 = monotonic_ns();
  return {{"total", since(t0, t2)}, {"start", since(t0, t1)}, {"stop", since(t1, t2)}};
}

// One variant per benchmark, each iteration recorded (no floor inside: compared with section 1's
// floor).
void single(benchmark::State& state, const std::string& key, const std::function<Metrics()>& run) {
  Recorder record{state, key + "."};
  for (auto _ : state) {
    const Metrics metrics = run();
    for (const auto& [metric, value] : metrics) record.add(metric, value);
    state.SetIterationTime(metrics.at("total") / 1e9);
  }
}

// ---------------------------------------------------------------------------------------------
// 2: the first start in a fresh process, via `procfix_bench --cold-start-probe=MODE`.

std::string self_executable() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) throw std::system_error{errno, std::generic_category(), "readlink /proc/self/exe"};
  return std::string(path, static_cast<std::size_t>(n));
}

Metrics cold_start(const std::string& mode) {
  const Command command{self_executable(), {"--cold-start-probe=" + mode}, false};
  const RawPipe pipe = make_raw_pipe();
  Fd read_end{pipe.read};
  Fd write_end{pipe.write};
  RawChild probe{spawn_raw(SpawnMethod::posix_spawn, command, -1, write_end.get())};
  write_end.reset();
  const std::string line = read_line_blocking(read_end.get());
  probe.reap();
  long long start_ns = 0;
  long long total_ns = 0;
  if (std::sscanf(line.c_str(), "%lld %lld", &start_ns, &total_ns) != 2) {
    throw std::runtime_error{"cold-start probe printed '" + line + "'"};
  }
  return {{"total", static_cast<double>(total_ns)}, {"start", static_cast<double>(start_ns)}};
}

// ---------------------------------------------------------------------------------------------
// 4: CPU while waiting. The child delays readiness by kWaitDelayMs. Two figures:
//  - window: CPU used while the start is blocked, read by a sampler thread at 100 ms and 900 ms
//    after the spawn (the sampler's own CPU, from CLOCK_THREAD_CPUTIME_ID, is subtracted). The
//    sampler's clock_nanosleep() only places the measurement window; it synchronises nothing.
//  - whole start: CPU of a delayed start minus CPU of an immediate one (interleaved pairs); this
//    also counts what the wait makes dearer afterwards (cold caches when the message arrives).

enum class WaitStrategy {
  raw_blocking,
  procfix_supervised,
  procfix_in_process,
  poll_100ms,
  poll_10ms
};

constexpr std::int64_t kWindowBeginNs = 100'000'000;
constexpr std::int64_t kWindowEndNs = 900'000'000;

std::int64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until_monotonic(std::int64_t ns) {
  const timespec at{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
  }
}

// CPU used by this process (minus the sampler thread) and by the supervisor inside
// [origin + kWindowBeginNs, origin + kWindowEndNs].
class CpuWindow {
 public:
  CpuWindow(std::int64_t origin_ns, pid_t supervisor)
      : thread_{[this, origin_ns, supervisor] { sample(origin_ns, supervisor); }} {}
  CpuWindow(const CpuWindow&) = delete;
  CpuWindow& operator=(const CpuWindow&) = delete;
  ~CpuWindow() {
    if (thread_.joinable()) thread_.join();
  }

  struct Result {
    std::int64_t wall = 0;
    std::int64_t self = 0;
    std::int64_t supervisor = 0;
    std::int64_t supervisor_stat = 0;
  };
  Result finish() {
    thread_.join();
    return result_;
  }

 private:
  void sample(std::int64_t origin_ns, pid_t supervisor) {
    sleep_until_monotonic(origin_ns + kWindowBeginNs);
    const std::int64_t wall0 = monotonic_ns();
    const std::int64_t self0 = self_cpu_ns();
    const std::int64_t own0 = thread_cpu_ns();
    const std::int64_t supervisor0 = process_cpu_ns(supervisor);
    const std::int64_t supervisor_stat0 = supervisor > 0 ? proc_stat_cpu_ns(supervisor) : 0;
    sleep_until_monotonic(origin_ns + kWindowEndNs);
    const std::int64_t supervisor_stat1 = supervisor > 0 ? proc_stat_cpu_ns(supervisor) : 0;
    const std::int64_t supervisor1 = process_cpu_ns(supervisor);
    const std::int64_t own1 = thread_cpu_ns();
    const std::int64_t self1 = self_cpu_ns();
    result_.wall = monotonic_ns() - wall0;
    result_.self = (self1 - self0) - (own1 - own0);
    if (supervisor > 0) {
      result_.supervisor = supervisor1 - supervisor0;
      result_.supervisor_stat = supervisor_stat1 - supervisor_stat0;
    }
  }

  Result result_;
  std::thread thread_;
};

struct WaitSample {
  std::int64_t wall = 0;        // spawn until readiness detected
  std::int64_t cpu = 0;         // this process, getrusage(RUSAGE_SELF), same span
  std::int64_t supervisor = 0;  // procfix-supervisor, clock_getcpuclockid (supervised only)
  std::optional<CpuWindow::Result> window;
};

WaitSample start_and_wait(WaitStrategy strategy, int delay_ms, pid_t supervisor) {
  WaitSample sample;
  std::unique_ptr<Server> server;
  std::unique_ptr<RawChild> child;
  const std::vector<std::string> delay_args{"--start-delay=" + std::to_string(delay_ms)};
  const bool polling = strategy == WaitStrategy::poll_100ms || strategy == WaitStrategy::poll_10ms;
  const std::uint16_t port = polling ? pick_free_port() : 0;
  const Command raw_command{kSampleChild, child_args(delay_args), true};
  const Command polling_command = listening_command(port, delay_ms);
  const ServerOptions options = sample_options(delay_args);
  const bool windowed = delay_ms * std::int64_t{1'000'000} > kWindowEndNs;

  const std::int64_t supervisor0 = process_cpu_ns(supervisor);
  const std::int64_t wall0 = monotonic_ns();
  std::optional<CpuWindow> window;
  if (windowed) window.emplace(wall0, supervisor);
  const std::int64_t cpu0 = self_cpu_ns();
  switch (strategy) {
    case WaitStrategy::raw_blocking: {
      const RawPipe pipe = make_raw_pipe();
      Fd read_end{pipe.read};
      Fd write_end{pipe.write};
      child = std::make_unique<RawChild>(
          spawn_raw(SpawnMethod::posix_spawn, raw_command, write_end.get()));
      write_end.reset();
      (void)read_line_blocking(read_end.get());
      break;
    }
    case WaitStrategy::procfix_supervised:
    case WaitStrategy::procfix_in_process:
      server = std::make_unique<Server>(options);
      break;
    case WaitStrategy::poll_100ms:
    case WaitStrategy::poll_10ms: {
      child = std::make_unique<RawChild>(spawn_raw(SpawnMethod::posix_spawn, polling_command, -1));
      const auto interval = strategy == WaitStrategy::poll_100ms ? 100ms : 10ms;
      Fd connection{connect_by_polling(port, interval, 30s)};
      break;
    }
  }
  sample.cpu = self_cpu_ns() - cpu0;
  sample.wall = monotonic_ns() - wall0;
  if (supervisor > 0) sample.supervisor = process_cpu_ns(supervisor) - supervisor0;
  if (window) {
    sample.window = window->finish();
    if (sample.wall < kWindowEndNs) {
      throw std::runtime_error{"the start returned before the end of the CPU window"};
    }
  }
  if (server) expect_clean(server->stop());
  if (child) child->terminate();
  return sample;
}

void wait_cost(benchmark::State& state, WaitStrategy strategy, const std::string& variant) {
  if (strategy == WaitStrategy::procfix_in_process) use_launcher(Launch::in_process);
  if (strategy == WaitStrategy::procfix_supervised) use_launcher(Launch::supervised);
  (void)start_and_wait(strategy, 0, -1);  // warm-up; starts the supervisor if needed
  const pid_t supervisor =
      strategy == WaitStrategy::procfix_supervised ? find_supervisor() : pid_t{-1};
  if (strategy == WaitStrategy::procfix_supervised && supervisor < 0) {
    throw std::runtime_error{"no procfix-supervisor child found after a supervised start"};
  }
  Recorder record{state, "wait." + variant + "."};
  bool delayed_first = true;
  for (auto _ : state) {
    WaitSample delayed;
    WaitSample immediate;
    if (delayed_first) {
      delayed = start_and_wait(strategy, kWaitDelayMs, supervisor);
      immediate = start_and_wait(strategy, 0, supervisor);
    } else {
      immediate = start_and_wait(strategy, 0, supervisor);
      delayed = start_and_wait(strategy, kWaitDelayMs, supervisor);
    }
    delayed_first = !delayed_first;
    state.SetIterationTime(static_cast<double>(delayed.wall) / 1e9);
    record.add("wall_delayed", static_cast<double>(delayed.wall));
    record.add("wall_immediate", static_cast<double>(immediate.wall));
    record.add("cpu_delayed", static_cast<double>(delayed.cpu));
    record.add("cpu_immediate", static_cast<double>(immediate.cpu));
    record.add("window_wall", static_cast<double>(delayed.window->wall));
    record.add("window_cpu", static_cast<double>(delayed.window->self));
    if (supervisor > 0) {
      record.add("supervisor_delayed", static_cast<double>(delayed.supervisor));
      record.add("supervisor_immediate", static_cast<double>(immediate.supervisor));
      record.add("window_supervisor", static_cast<double>(delayed.window->supervisor));
      record.add("window_supervisor_stat", static_cast<double>(delayed.window->supervisor_stat));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 5: many servers at once: start_servers(), then stop_servers() (signal all, wait for all, reap
// all), against posix_spawn all / epoll all / kill all / waitpid all.

// The row's figures from its three instants (start, all ready, all stopped).
Metrics many_metrics(std::int64_t t0, std::int64_t t1, std::int64_t t2, int count, int fds_before) {
  return {{"total", since(t0, t2)},
          {"ready_all", since(t0, t1)},
          {"stop_all", since(t1, t2)},
          {"per_server", since(t0, t2) / count},
          {"count_fds_delta", open_fd_count() - fds_before},
          {"count_children_left", static_cast<double>(children_left())}};
}

Metrics many_raw(int count) {
  static const Command command{kSampleChild, child_args(), true};
  const auto n = static_cast<std::size_t>(count);
  const int fds_before = open_fd_count();
  const std::int64_t t0 = monotonic_ns();
  std::vector<RawChild> children;
  std::vector<Fd> read_ends;
  children.reserve(n);
  read_ends.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const RawPipe pipe = make_raw_pipe();
    read_ends.emplace_back(pipe.read);
    Fd write_end{pipe.write};
    children.emplace_back(spawn_raw(SpawnMethod::posix_spawn, command, write_end.get()));
  }
  Fd epoll{::epoll_create1(EPOLL_CLOEXEC)};
  for (std::size_t i = 0; i < n; ++i) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, read_ends[i].get(), &event) != 0) {
      throw std::system_error{errno, std::generic_category(), "epoll_ctl"};
    }
  }
  std::vector<std::string> lines(n);
  std::size_t pending = n;
  while (pending > 0) {
    epoll_event events[256];
    const int ready = ::epoll_wait(epoll.get(), events, 256, 120'000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) throw std::runtime_error{"raw servers not ready within 120 s"};
    for (int e = 0; e < ready; ++e) {
      const std::size_t i = events[e].data.u64;
      char buffer[512];
      const ssize_t got = ::read(read_ends[i].get(), buffer, sizeof buffer);
      if (got <= 0) throw std::runtime_error{"a raw server closed its readiness pipe"};
      lines[i].append(buffer, static_cast<std::size_t>(got));
      if (lines[i].find('\n') != std::string::npos) {
        ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, read_ends[i].get(), nullptr);
        read_ends[i].reset();
        --pending;
      }
    }
  }
  const std::int64_t t1 = monotonic_ns();
  for (const RawChild& child : children) child.request_stop();
  for (RawChild& child : children) child.reap();
  epoll.reset();
  const std::int64_t t2 = monotonic_ns();
  children.clear();
  read_ends.clear();
  return many_metrics(t0, t1, t2, count, fds_before);
}

Metrics many_procfix(int count, Launch launch) {
  use_launcher(launch);
  const int fds_before = open_fd_count();
  std::vector<ServerOptions> options(static_cast<std::size_t>(count), sample_options({}, 120s));
  const std::int64_t t0 = monotonic_ns();
  std::vector<Server> servers = start_servers(std::move(options));
  const std::int64_t t1 = monotonic_ns();
  std::string unclean;
  for (const StopReport& report : stop_servers(servers)) {
    if (!report.ok() && unclean.empty()) unclean = report.describe();
  }
  servers.clear();
  const std::int64_t t2 = monotonic_ns();
  if (!unclean.empty()) throw std::runtime_error{unclean};
  return many_metrics(t0, t1, t2, count, fds_before);
}

void many(benchmark::State& state, int count) {
  // Warm-up: one server each way (starts the supervisor and the output pump before counting fds).
  (void)procfix_cycle(Launch::supervised);
  (void)procfix_cycle(Launch::in_process);
  interleaved(state, "many" + std::to_string(count),
              {{"raw", [count] { return many_raw(count); }},
               {"procfix_supervised", [count] { return many_procfix(count, Launch::supervised); }},
               {"procfix_in_process", [count] { return many_procfix(count, Launch::in_process); }}},
              /*warm_up=*/false);
}

// ---------------------------------------------------------------------------------------------
// 8: the example suite, kSuiteCycles × (start, ping, stop).

enum class SuiteStrategy { raw, procfix_supervised, procfix_in_process, poll_100ms };

void suite_cycle(SuiteStrategy strategy) {
  switch (strategy) {
    case SuiteStrategy::raw: {
      static const Command command{kSampleChild, child_args(), true};
      const RawPipe pipe = make_raw_pipe();
      Fd read_end{pipe.read};
      Fd write_end{pipe.write};
      RawChild child{spawn_raw(SpawnMethod::posix_spawn, command, write_end.get())};
      write_end.reset();
      const nlohmann::json message = nlohmann::json::parse(read_line_blocking(read_end.get()));
      const std::string address = message.at("address").get<std::string>();
      const std::size_t colon = address.rfind(':');
      ping(address.substr(0, colon),
           static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
      child.terminate();
      break;
    }
    case SuiteStrategy::procfix_supervised:
    case SuiteStrategy::procfix_in_process: {
      use_launcher(strategy == SuiteStrategy::procfix_supervised ? Launch::supervised
                                                                 : Launch::in_process);
      Server server{sample_options()};
      ping(server.endpoint().host(), server.endpoint().port());
      expect_clean(server.stop());
      break;
    }
    case SuiteStrategy::poll_100ms: {
      const std::uint16_t port = pick_free_port();
      const Command command = listening_command(port);
      RawChild child{spawn_raw(SpawnMethod::posix_spawn, command, -1)};
      Fd connection{connect_by_polling(port, 100ms, 30s)};
      expect_pong(connection.get());
      connection.reset();
      child.terminate();
      break;
    }
  }
}

Metrics suite(SuiteStrategy strategy) {
  const std::int64_t t0 = monotonic_ns();
  for (int i = 0; i < kSuiteCycles; ++i) suite_cycle(strategy);
  return {{"total", since(t0, monotonic_ns())}};
}

// ---------------------------------------------------------------------------------------------
// Registration.

// Runs `body`; an exception skips the benchmark with its message and is listed under the table.
void guarded(benchmark::State& state, const std::string& name,
             const std::function<void(benchmark::State&)>& body) {
  try {
    body(state);
  } catch (const std::exception& e) {
    static std::string message;  // SkipWithError keeps the pointer until the report is made
    message = e.what();
    record_error(name, message);
    state.SkipWithError(message.c_str());
  }
}

void add(const std::string& name, int iterations, std::function<void(benchmark::State&)> body) {
  benchmark::RegisterBenchmark(
      name.c_str(), [name, body](benchmark::State& state) { guarded(state, name, body); })
      ->Iterations(iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

void register_benchmarks(const RunPlan& plan) {
  // Iterations per benchmark; a smoke run does one of each.
  auto n = [&](int iterations) { return plan.smoke ? 1 : iterations; };

  // 1, 3, 7: one server; 300 interleaved iterations (each: one cycle of every variant).
  add("cycle/interleaved", n(300),
      [](benchmark::State& s) { interleaved(s, "cycle", cycle_variants()); });
  add("cycle/poll_100ms", n(5), [](benchmark::State& s) {
    single(s, "cycle.poll_100ms", [] { return polling_cycle(100ms); });
  });
  add("cycle/poll_10ms", n(20), [](benchmark::State& s) {
    single(s, "cycle.poll_10ms", [] { return polling_cycle(10ms); });
  });
  add("cycle/sleep_2s", n(2),
      [](benchmark::State& s) { single(s, "cycle.sleep_2s", [] { return sleep_cycle(); }); });

  // 2: first start in a fresh process.
  add("cold/interleaved", n(30), [](benchmark::State& s) {
    interleaved(s, "cold",
                {{"raw", [] { return cold_start("raw"); }},
                 {"procfix_supervised", [] { return cold_start("supervised"); }},
                 {"procfix_in_process", [] { return cold_start("in-process"); }}},
                /*warm_up=*/false);
  });

  // 4: CPU while waiting (each iteration waits kWaitDelayMs once).
  const std::pair<WaitStrategy, const char*> waits[] = {
      {WaitStrategy::raw_blocking, "raw_blocking"},
      {WaitStrategy::procfix_supervised, "procfix_supervised"},
      {WaitStrategy::procfix_in_process, "procfix_in_process"},
      {WaitStrategy::poll_100ms, "poll_100ms"},
      {WaitStrategy::poll_10ms, "poll_10ms"}};
  for (const auto& [strategy, variant] : waits) {
    add(std::string{"wait/"} + variant, n(4),
        [strategy, v = std::string{variant}](benchmark::State& s) { wait_cost(s, strategy, v); });
  }

  // 5: many at once.
  add("many/100/interleaved", n(5), [](benchmark::State& s) { many(s, 100); });
  add("many/1000/interleaved", n(2), [](benchmark::State& s) { many(s, 1000); });

  // 6: a test process holding 1 GiB of touched memory.
  add("big_1GiB/interleaved", n(40), [](benchmark::State& s) { big_cycles(s); });

  // 8: the example suite.
  add("suite/interleaved", n(5), [](benchmark::State& s) {
    interleaved(s, "suite",
                {{"raw", [] { return suite(SuiteStrategy::raw); }},
                 {"procfix_supervised", [] { return suite(SuiteStrategy::procfix_supervised); }},
                 {"procfix_in_process", [] { return suite(SuiteStrategy::procfix_in_process); }}});
  });
  add("suite/poll_100ms", n(1), [](benchmark::State& s) {
    single(s, "suite.poll_100ms", [] { return suite(SuiteStrategy::poll_100ms); });
  });

  // 10: the listen() readiness mode.
  add("listen/interleaved", n(200), [](benchmark::State& s) {
    interleaved(s, "listen",
                {{"ready_fd", [] { return mode_cycle(false); }},
                 {"listen", [] { return mode_cycle(true); }}});
  });
  add("syscall/interleaved", n(10), [](benchmark::State& s) {
    interleaved(s, "syscall",
                {{"plain", [] { return syscall_cost(false); }},
                 {"filtered", [] { return syscall_cost(true); }}});
  });
}

int cold_start_probe(const char* mode) {
  try {
    const std::string which = mode;
    std::int64_t t0 = 0;
    std::int64_t t1 = 0;
    if (which == "raw") {
      const Command command{kSampleChild, child_args(), true};
      t0 = monotonic_ns();
      const RawPipe pipe = make_raw_pipe();
      Fd read_end{pipe.read};
      Fd write_end{pipe.write};
      RawChild child{spawn_raw(SpawnMethod::posix_spawn, command, write_end.get())};
      write_end.reset();
      (void)read_line_blocking(read_end.get());
      t1 = monotonic_ns();
      read_end.reset();
      child.terminate();
    } else if (which == "supervised" || which == "in-process") {
      use_launcher(which == "supervised" ? Launch::supervised : Launch::in_process);
      const ServerOptions options = sample_options();
      t0 = monotonic_ns();
      Server server{options};
      t1 = monotonic_ns();
      expect_clean(server.stop());
    } else {
      std::fprintf(stderr, "--cold-start-probe: unknown mode '%s'\n", mode);
      return 2;
    }
    const std::int64_t t2 = monotonic_ns();
    std::printf("%lld %lld\n", static_cast<long long>(t1 - t0), static_cast<long long>(t2 - t0));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cold-start probe (%s): %s\n", mode, e.what());
    return 1;
  }
}

}  // namespace procfix::bench
