// qforge inspect --error REF QUANT: per-tensor reconstruction error (RMSE, max |error|, SNR in dB) of QUANT
// against REF, worst tensor first, plus totals; text or --json. The work is CompareTensors (plan/).
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"
#include "qforge/formats/model_source.h"
#include "qforge/plan/tensor_error.h"

namespace qforge::cli {
namespace {

// JSON has no infinity: an identical tensor gets "snr_db": null and "identical": true.
nlohmann::json SumsJson(const ErrorSums& s) {
  const double snr = s.snr_db();
  return {{"elements", s.n},
          {"rmse", s.rmse()},
          {"max_abs", s.max_abs},
          {"snr_db", std::isinf(snr) ? nlohmann::json(nullptr) : nlohmann::json(snr)},
          {"snr", FormatSnr(snr)},
          {"identical", s.sum_err2 == 0}};
}

std::string ShapeString(const std::vector<uint64_t>& ne) { return fmt::format("{}", fmt::join(ne, "x")); }

void PrintText(const std::string& ref, const std::string& quant, const ErrorReport& r) {
  fmt::print("reference: {}\nquantized: {}\n\n", ref, quant);
  size_t w = 24;
  for (const auto& t : r.tensors) w = std::max(w, t.name.size());
  fmt::print("  {:<{}} {:<16} {:<6} {:<6} {:>12} {:>12} {:>9}\n", "tensor (worst SNR first)", w, "ne", "ref", "quant",
             "rmse", "max |err|", "SNR dB");
  for (const auto& t : r.tensors) {
    fmt::print("  {:<{}} {:<16} {:<6} {:<6} {:>12.4e} {:>12.4e} {:>9}\n", t.name, w, ShapeString(t.ne),
               GgmlTypeName(t.ref_type), GgmlTypeName(t.quant_type), t.sums.rmse(), t.sums.max_abs,
               FormatSnr(t.sums.snr_db()));
  }
  const auto total = [](const char* what, const ErrorSums& s) {
    if (s.n == 0) return fmt::print("{:<34} none\n", what);
    fmt::print("{:<34} {:>14} elements, rmse {:.4e}, max |err| {:.4e}, SNR {} dB\n", what, s.n, s.rmse(), s.max_abs,
               FormatSnr(s.snr_db()));
  };
  fmt::print("\n");
  total("total (all tensors):", r.total);
  total("re-typed tensors (type differs):", r.quantized);
}

}  // namespace

int RunInspectError(const std::string& ref_path, const std::string& quant_path, bool json) {
  auto ref = OpenModelSource(ref_path);
  if (!ref.ok()) return ReportError(ref.status());
  auto quant = OpenModelSource(quant_path);
  if (!quant.ok()) return ReportError(quant.status());
  ProgressBar bar("compare", ref->tensors.size(), StderrIsTerminal());
  auto report = CompareTensors(*ref, *quant, [&bar](size_t done, size_t) { bar.Update(done); });
  bar.Finish();
  if (!report.ok()) return ReportError(report.status());
  if (!json) {
    PrintText(ref_path, quant_path, *report);
    return 0;
  }
  nlohmann::json j = {{"reference", ref_path}, {"quantized", quant_path}, {"tensors", nlohmann::json::array()}};
  for (const auto& t : report->tensors) {
    nlohmann::json row = SumsJson(t.sums);
    row["name"] = t.name;
    row["ne"] = t.ne;
    row["ref_type"] = std::string(GgmlTypeName(t.ref_type));
    row["quant_type"] = std::string(GgmlTypeName(t.quant_type));
    j["tensors"].push_back(std::move(row));
  }
  j["total"] = SumsJson(report->total);
  j["retyped"] = SumsJson(report->quantized);
  fmt::print("{}\n", j.dump(2));
  return 0;
}

}  // namespace qforge::cli
