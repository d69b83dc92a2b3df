// Where the benchmarks leave their samples, and the one markdown table made from them.
//
// Every benchmark adds raw samples (nanoseconds, or counts) under keys "<group>.<variant>.<metric>"
// (e.g. "cycle.procfix_supervised.total"). A benchmark registered several times (interleaved
// rounds) adds to the same keys. After the run, print_table() turns them into one table whose
// ratios are all against floors measured in the same process, in the same run.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace procfix::bench {

class Samples {
 public:
  void add(double value) { values_.push_back(value); }
  bool empty() const { return values_.empty(); }
  std::size_t size() const { return values_.size(); }
  double mean() const;
  double max() const;
  // Nearest-rank percentile, p in [0, 100].
  double percentile(double p) const;
  double median() const { return percentile(50); }

 private:
  std::vector<double> values_;
};

// The process-wide store (the benchmarks run in the main thread, one after the other).
Samples& samples(const std::string& key);
// nullptr if nothing was recorded under `key` (e.g. filtered out).
const Samples* find_samples(const std::string& key);

// Errors seen by any benchmark (a benchmark that threw is skipped with its message).
void record_error(const std::string& benchmark, const std::string& what);
const std::vector<std::string>& errors();

struct TableContext {
  bool smoke = false;
  std::string machine;      // machine_line()
  std::string notes;        // e.g. the RLIMIT_NOFILE change
  std::string load_before;  // /proc/loadavg when the run began and ended: other work on the
  std::string load_after;   // machine during the run makes every figure (not only ratios) noisy
  // CPU used by other processes during the run, as a share of all CPUs (and hypervisor steal).
  double other_cpu_share = -1;
  double steal_share = -1;
  double machine_busy_s = 0;  // CPU seconds the machine was busy during the run (all CPUs)
  double ours_s = 0;          // of which this benchmark, its children and its supervisor
  double capacity_s = 0;      // wall seconds × CPUs
};

// The result table (markdown) with a machine line above it.
void print_table(std::ostream& out, const TableContext& context);

}  // namespace procfix::bench
