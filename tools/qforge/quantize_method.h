// `qforge quantize --method rtn|imatrix|gptq|awq|awq+gptq --calib FILE ...`: the flags of the calibrated
// methods and the glue that turns them into a TensorEncoder for QuantizeToGguf (quantize.cc calls
// AddMethodOptions and PrepareMethod; everything else lives in quantize_method.cc).
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "progress.h"
#include "qforge/algo/calibration_text.h"
#include "qforge/algo/policy.h"
#include "qforge/formats/source_model.h"
#include "qforge/pipeline/quantize.h"

namespace qforge::cli {

struct MethodArgs {
  std::string method = "rtn";
  CalibrationOptions calib;  // --calib, --calib-tokens, --calib-ctx
  double damp = 0.01;        // GPTQ: fraction of the mean H diagonal added to the diagonal
  bool act_order = false;    // GPTQ: blocks in order of decreasing H diagonal
  int awq_grid = 20;         // AWQ: α steps in [0, 1)
};

void AddMethodOptions(CLI::App* cmd, MethodArgs* args);

// What a calibrated method keeps alive while QuantizeToGguf runs (the encoder, its per-block progress
// bar). Destroying it ends the bar and prints the per-block summary (AWQ's α, GPTQ fallbacks) on stderr.
class MethodSession {
 public:
  virtual ~MethodSession() = default;
};

// For --method rtn: an empty session, options untouched (and an error if calibration flags were given).
// Otherwise: tokenizes the calibration text, plans the types, installs the encoder, a per-block progress
// callback (replacing the per-tensor one) and the method's metadata keys in *options.
StatusOr<std::unique_ptr<MethodSession>> PrepareMethod(const MethodArgs& args, const SourceModel& model,
                                                       const Policy& policy, ProgressMode progress,
                                                       QuantizeOptions* options);

}  // namespace qforge::cli
