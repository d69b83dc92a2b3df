// procfix_bench: every performance figure of procfix next to its floor, measured in one run.
//
//   procfix_bench                 all benchmarks (a few minutes), then the table on stdout
//   procfix_bench --smoke         one iteration of each (CI: proves every row runs; < 60 s)
//   procfix_bench --benchmark_filter=REGEX ...   any Google Benchmark flag
//
// Google Benchmark's own report goes to stderr; stdout carries only the markdown table.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks.hpp"
#include "results.hpp"
#include "support.hpp"

int main(int argc, char** argv) {
  using namespace procfix::bench;
  constexpr std::string_view kProbe = "--cold-start-probe=";
  for (int i = 1; i < argc; ++i) {
    if (std::string_view{argv[i]}.starts_with(kProbe)) {
      return cold_start_probe(argv[i] + kProbe.size());
    }
  }

  RunPlan plan;
  std::vector<char*> args{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      plan.smoke = true;
    } else {
      args.push_back(argv[i]);
    }
  }

  // 1,000 servers at once need several thousand fds (the supervisor, started later, inherits
  // this limit too).
  const auto [old_soft, new_soft] = raise_fd_limit();
  TableContext context;
  context.smoke = plan.smoke;
  context.machine = machine_line();
  context.load_before = load_average();
  const CpuAccount before = cpu_account();
  context.notes = "RLIMIT_NOFILE soft limit raised from " + std::to_string(old_soft) + " to " +
                  std::to_string(new_soft) + " (the hard limit) at bench start.";

  int bench_argc = static_cast<int>(args.size());
  benchmark::Initialize(&bench_argc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bench_argc, args.data())) return 2;
  register_benchmarks(plan);

  // Colours only on a terminal (the report usually goes to a log file).
  benchmark::ConsoleReporter console{::isatty(STDERR_FILENO)
                                         ? benchmark::ConsoleReporter::OO_ColorTabular
                                         : benchmark::ConsoleReporter::OO_Tabular};
  console.SetOutputStream(&std::cerr);
  console.SetErrorStream(&std::cerr);
  benchmark::RunSpecifiedBenchmarks(&console);
  benchmark::Shutdown();
  context.load_after = load_average();
  const CpuAccount after = cpu_account();
  const double capacity = static_cast<double>(after.wall - before.wall) *
                          static_cast<double>(std::thread::hardware_concurrency());
  if (capacity > 0) {
    const double others = static_cast<double>((after.machine_busy - before.machine_busy) -
                                              (after.ours - before.ours));
    context.other_cpu_share = std::max(0.0, others / capacity);
    context.machine_busy_s = static_cast<double>(after.machine_busy - before.machine_busy) / 1e9;
    context.ours_s = static_cast<double>(after.ours - before.ours) / 1e9;
    context.capacity_s = capacity / 1e9;
    context.steal_share =
        static_cast<double>(after.machine_steal - before.machine_steal) / capacity;
  }

  print_table(std::cout, context);
  return errors().empty() ? 0 : 1;
}
