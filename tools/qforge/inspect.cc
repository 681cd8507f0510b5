// qforge inspect FILE|DIR: metadata, a tensor table (name, shape, type, bytes, bits per weight) and
// totals, as text or --json. Works on every input qforge reads (GGUF, llama2.c, Hugging Face folder).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "qforge/formats/gguf.h"
#include "qforge/formats/model_source.h"

namespace qforge::cli {
namespace {

struct InspectArgs {
  std::string input;
  std::string tokenizer;
  bool json = false;
  bool full = false;
  std::string error_ref;  // --error REF: compare `input` against REF (inspect_error.cc)
};

struct TensorRow {
  const SourceTensor* t;
  uint64_t bytes;
};

std::string ShapeString(const std::vector<uint64_t>& ne) {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return s;
}

nlohmann::json ValueJson(const MetaValue& v, bool full) {
  switch (v.type) {
    case GgufValueType::STRING: return v.s;
    case GgufValueType::F32: case GgufValueType::F64: return v.f;
    case GgufValueType::BOOL: return v.u != 0;
    case GgufValueType::ARRAY: {
      nlohmann::json values = nlohmann::json::array();
      const size_t limit = full ? v.array.size() : std::min<size_t>(v.array.size(), 16);
      for (size_t i = 0; i < limit; ++i) values.push_back(ValueJson(v.array[i], full));
      return {{"array_of", std::string(GgufValueTypeName(v.elem_type))}, {"count", v.array.size()},
              {"values", values}, {"truncated", limit < v.array.size()}};
    }
    default:
      if (auto i = v.AsInt()) return *i;
      return v.u;
  }
}

void PrintText(const SourceModel& m, const std::vector<TensorRow>& rows, const GgufFile* gguf,
               uint64_t params, uint64_t bytes) {
  fmt::print("file: {}\nformat: {}", m.path, m.format);
  if (gguf) {
    fmt::print(" v{}, alignment {}, data offset {}, file size {}", gguf->version, gguf->alignment,
               gguf->data_offset, gguf->file->size());
  }
  fmt::print("\n\nmetadata ({} keys):\n", m.metadata.size());
  for (const auto& [key, value] : m.metadata.entries()) {
    fmt::print("  {:<44} {:<4} {}\n", key, GgufValueTypeName(value.type), value.ToString());
  }
  size_t name_w = 24;
  for (const auto& r : rows) name_w = std::max(name_w, r.t->name.size());
  fmt::print("\ntensors ({}):\n  {:<{}} {:<20} {:<7} {:>14} {:>7}\n", rows.size(), "name", name_w,
             "ne (inner first)", "type", "bytes", "bpw");
  for (const auto& r : rows) {
    fmt::print("  {:<{}} {:<20} {:<7} {:>14} {:>7.3f}\n", r.t->name, name_w, ShapeString(r.t->ne),
               GgmlTypeName(r.t->type), r.bytes, 8.0 * r.bytes / static_cast<double>(r.t->numel()));
  }
  fmt::print("\ntotal: {} tensors, {} parameters, {} bytes of tensor data, {:.3f} bits per weight\n", rows.size(),
             params, bytes, params ? 8.0 * bytes / static_cast<double>(params) : 0.0);
}

int RunInspect(const InspectArgs& args) {
  if (!args.error_ref.empty()) return RunInspectError(args.error_ref, args.input, args.json);
  OpenOptions open;
  open.tokenizer = args.tokenizer;
  auto model = OpenModelSource(args.input, open);
  if (!model.ok()) return ReportError(model.status());
  std::optional<GgufFile> gguf;
  if (model->format == "gguf") {
    auto g = ReadGguf(args.input);
    if (!g.ok()) return ReportError(g.status());
    gguf = std::move(*g);
  }
  std::vector<TensorRow> rows;
  uint64_t params = 0, bytes = 0;
  for (const auto& t : model->tensors) {
    auto b = GgufTensorBytes(t.type, t.ne);
    if (!b.ok()) return ReportError(b.status());
    rows.push_back({&t, *b});
    params += t.numel();
    bytes += *b;
  }
  if (!args.json) {
    PrintText(*model, rows, gguf ? &*gguf : nullptr, params, bytes);
    return 0;
  }
  nlohmann::json j;
  j["file"] = model->path;
  j["format"] = model->format;
  if (gguf) {
    j["gguf"] = {{"version", gguf->version}, {"alignment", gguf->alignment}, {"data_offset", gguf->data_offset},
                 {"file_size", gguf->file->size()}};
  }
  j["metadata"] = nlohmann::json::object();
  for (const auto& [key, value] : model->metadata.entries()) j["metadata"][key] = ValueJson(value, args.full);
  j["tensors"] = nlohmann::json::array();
  for (const auto& r : rows) {
    j["tensors"].push_back({{"name", r.t->name}, {"ne", r.t->ne}, {"type", std::string(GgmlTypeName(r.t->type))},
                            {"bytes", r.bytes}, {"bpw", 8.0 * r.bytes / static_cast<double>(r.t->numel())}});
  }
  j["totals"] = {{"tensors", rows.size()}, {"params", params}, {"bytes", bytes},
                 {"bpw", params ? 8.0 * bytes / static_cast<double>(params) : 0.0}};
  fmt::print("{}\n", j.dump(2));
  return 0;
}

}  // namespace

void RegisterInspect(CLI::App& app, CommandRegistry& reg) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "Print a model's metadata, tensor table and totals");
  cmd->add_option("input", args->input, "GGUF file, llama2.c checkpoint or Hugging Face folder")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "llama2.c tokenizer.bin (default: found beside the checkpoint)");
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->add_option("--error", args->error_ref, "REF: per-tensor error (RMSE, max, SNR) of input against REF");
  cmd->add_flag("--full", args->full, "With --json: print whole metadata arrays (default: first 16 items)");
  cmd->callback([&reg, args] { reg.Set([args] { return RunInspect(*args); }); });
}

}  // namespace qforge::cli
