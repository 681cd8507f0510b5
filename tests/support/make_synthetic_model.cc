// Writes a synthetic Llama-family GGUF (see synthetic_model.h) for tests and benchmarks.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "qforge/pipeline/quantize.h"
#include "synthetic_model.h"

int main(int argc, char** argv) {
  CLI::App app{"Write a synthetic Llama-family GGUF with realistic shapes"};
  std::string out, type = "F16";
  qforge::testing::SyntheticSpec spec;
  app.add_option("output", out, "Output GGUF")->required();
  app.add_option("--layers", spec.n_layer)->capture_default_str();
  app.add_option("--embd", spec.n_embd)->capture_default_str();
  app.add_option("--ff", spec.n_ff)->capture_default_str();
  app.add_option("--heads", spec.n_head)->capture_default_str();
  app.add_option("--kv-heads", spec.n_head_kv)->capture_default_str();
  app.add_option("--vocab", spec.n_vocab)->capture_default_str();
  app.add_option("--seed", spec.seed)->capture_default_str();
  app.add_option("--type", type, "F32, F16 or BF16")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto model = qforge::testing::MakeSyntheticLlama(spec);
  auto policy = qforge::MakePolicy(type, qforge::ModelFactsFromSource(model));
  if (!policy.ok()) {
    fmt::print(stderr, "error: {}\n", policy.status().ToString());
    return 1;
  }
  auto report = qforge::QuantizeToGguf(model, *policy, out, {});
  if (!report.ok()) {
    fmt::print(stderr, "error: {}\n", report.status().ToString());
    return 1;
  }
  fmt::print("{}: {} tensors, {} parameters, {} bytes\n", out, report->plan.size(), report->params, report->file_bytes);
  return 0;
}
