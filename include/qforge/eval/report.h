// Reports of evaluations: an EvalSummary as JSON, and the `compare` report (one row per quantization
// type) as a text table, JSON and a self-contained HTML page with an inline SVG plot of file size vs
// mean KLD (log scale) with the Pareto front marked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qforge/eval/kld.h"

namespace qforge::eval {

nlohmann::json SummaryToJson(const EvalSummary& s);

struct CompareRow {
  std::string type;
  std::string path;
  uint64_t file_bytes = 0;
  double bits_per_weight = 0;
  EvalSummary summary;
  double quantize_seconds = 0, eval_seconds = 0;
};

struct CompareReport {
  std::string source, text, protocol;
  int n_ctx = 0;
  int ref_k = 0;                  // top-k of the saved reference
  uint64_t ref_file_bytes = 0;    // the unquantized reference GGUF
  double ref_ppl = 0, ref_ppl_unc = 0;
  std::vector<CompareRow> rows;
};

// Indices of rows not dominated in (file size, mean KLD): no other row is at most as large and at most
// as divergent, and strictly better in one. Sorted by file size.
std::vector<size_t> ParetoFront(const std::vector<CompareRow>& rows);

std::string FormatCompareTable(const CompareReport& r);
nlohmann::json CompareToJson(const CompareReport& r);
std::string CompareToHtml(const CompareReport& r);
// The plot alone (used by CompareToHtml; exposed for tests).
std::string CompareSvg(const CompareReport& r);

}  // namespace qforge::eval
