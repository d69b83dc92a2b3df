// The benchmarks behind every row of the table (see README.md in this folder).
#pragma once

namespace procfix::bench {

struct RunPlan {
  // One iteration of everything (CI): shows that every row runs, measures nothing.
  bool smoke = false;
};

// Registers every benchmark with Google Benchmark, in the order they run.
void register_benchmarks(const RunPlan& plan);

// `procfix_bench --cold-start-probe=raw|supervised|in-process`: one start/stop cycle as the first
// thing in a fresh process; prints "<ns until ready> <ns for the whole cycle>" and exits 0.
int cold_start_probe(const char* mode);

}  // namespace procfix::bench
