// Runs an evaluation plan through a model (the runtime's LlamaContext), optionally next to a reference
// model or saved reference logits, and optionally saves the reference's top-k logits.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "qforge/core/status.h"
#include "qforge/eval/kld.h"
#include "qforge/eval/protocol.h"
#include "qforge/eval/ref_logits.h"
#include "qforge/runtime/llama_model.h"

namespace qforge::eval {

struct EvalOptions {
  int threads = 1;
  // Called after each sequence with (positions done, positions total).
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Saves the reference's top-k (the evaluated model's own logits when there is no reference model).
  std::string save_ref_path;
  int save_ref_k = 64;
};

struct EvalReference {
  const LlamaModel* model = nullptr;       // full logits, computed alongside
  const RefLogitsFile* logits = nullptr;   // saved top-k (checked against the plan first)
  std::string logits_path;                 // for error messages
};

StatusOr<EvalSummary> Evaluate(const LlamaModel& model, const EvalPlan& plan, const EvalReference& ref,
                               const EvalOptions& options);

}  // namespace qforge::eval
