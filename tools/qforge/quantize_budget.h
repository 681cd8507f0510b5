// `qforge quantize IN OUT --target-bpw B | --target-size S | --fit MEM [--ctx N] [--measure FILE]`: the
// types come from the sensitivity measurement and the exact knapsack (algo/sensitivity.h, allocator.h)
// instead of a named mix. quantize.cc calls AddBudgetOptions, then ApplyBudget (which replaces the policy
// with one exact rule per tensor, so every --method encodes with the chosen types), then FinishBudget.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "qforge/algo/policy.h"
#include "qforge/algo/sensitivity.h"
#include "qforge/formats/source_model.h"
#include "qforge/pipeline/quantize.h"

namespace qforge::cli {

struct BudgetArgs {
  double target_bpw = 0;      // bits per weight of the tensor data (as `quantize` reports it)
  std::string target_size;    // file size, "20GB", "512MiB", bytes
  std::string fit;            // memory: weights + KV cache at --ctx + runtime overhead (plan's arithmetic)
  uint64_t ctx = 8192;        // context for --fit
  std::string measure;        // a measurement from `qforge measure` (else one is made with --calib)
  std::string calib;          // calibration text when no --measure is given
};

void AddBudgetOptions(CLI::App* cmd, BudgetArgs* args);
bool BudgetRequested(const BudgetArgs& args);

struct BudgetOutcome {
  BudgetPlan plan;
  std::string target;         // "--target-size 200000" as given, for messages and metadata
  uint64_t file_limit = 0;    // bytes the output file may have (0: no file-size target)
  uint64_t header_bytes = 0;  // predicted GGUF header
  uint64_t fit_memory = 0, fit_kv_overhead = 0;  // --fit: the memory and what the KV cache + overhead take
};

// Plans the types and, unless dry_run, replaces *policy and appends the plan to options->extra_metadata.
// method_metadata_reserve: header bytes a calibrated method will add to the metadata later. On dry_run the
// plan is printed.
StatusOr<BudgetOutcome> ApplyBudget(const BudgetArgs& args, const std::string& input, const SourceModel& model,
                                    const std::vector<std::string>& overrides, bool dry_run,
                                    uint64_t method_metadata_reserve, int threads, Policy* policy,
                                    QuantizeOptions* options);

// After the file is written: the budget was met (an error if not) and the prediction is printed.
Status FinishBudget(const BudgetOutcome& outcome, const QuantizeReport& report);

}  // namespace qforge::cli
