// Each command file defines Register<Name>(app, registry): it adds its CLI11 subcommand and the
// callback to run. The CLI owns printing and exit codes; the work is done by libqforge.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "qforge/core/status.h"
#include "qforge/pipeline/quantize.h"

namespace qforge::cli {

class CommandRegistry {
 public:
  // The callback of the parsed subcommand; returns the process exit code.
  void Set(std::function<int()> fn) { fn_ = std::move(fn); }
  int Run() { return fn_ ? fn_() : 2; }

 private:
  std::function<int()> fn_;
};

// Prints "qforge: error: <status>" to stderr and returns exit code 1.
int ReportError(const Status& status);

void RegisterInspect(CLI::App& app, CommandRegistry& reg);
void RegisterConvert(CLI::App& app, CommandRegistry& reg);
void RegisterQuantize(CLI::App& app, CommandRegistry& reg);
void RegisterRun(CLI::App& app, CommandRegistry& reg);
void RegisterEval(CLI::App& app, CommandRegistry& reg);
void RegisterCompare(CLI::App& app, CommandRegistry& reg);
void RegisterPlan(CLI::App& app, CommandRegistry& reg);
// inspect --error REF QUANT (tools/qforge/inspect_error.cc): per-tensor reconstruction error.
int RunInspectError(const std::string& ref, const std::string& quant, bool json);
void RegisterBench(CLI::App& app, CommandRegistry& reg);
void RegisterMeasure(CLI::App& app, CommandRegistry& reg);  // measure.cc: sensitivity for size budgets
void RegisterImatrix(CLI::App& app, CommandRegistry& reg);
// quantize --imatrix FILE (imatrix.cc): reads the file, checks it against the model (unknown entries are
// warned about, wrong column counts are errors naming the tensor), stores the mean-x² map in *holder (which
// must outlive the quantization) and points options->importance at it, adding the provenance keys.
Status ApplyImatrixFile(const std::string& path, const SourceModel& model, ImportanceMap* holder,
                        QuantizeOptions* options);

inline void RegisterAllCommands(CLI::App& app, CommandRegistry& reg) {
  RegisterInspect(app, reg);
  RegisterConvert(app, reg);
  RegisterQuantize(app, reg);
  RegisterRun(app, reg);
  RegisterEval(app, reg);
  RegisterCompare(app, reg);
  RegisterPlan(app, reg);
  RegisterBench(app, reg);
  RegisterMeasure(app, reg);
  RegisterImatrix(app, reg);
}

}  // namespace qforge::cli
