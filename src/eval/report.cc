// Text, JSON and HTML/SVG renderings of evaluation results (see report.h). The HTML has no external
// resources: inline CSS and SVG only.
#include "qforge/eval/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace qforge::eval {
namespace {

nlohmann::json Vu(const ValueUnc& v) { return {{"value", v.value}, {"unc", v.unc}}; }

std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string Mib(uint64_t b) { return fmt::format("{:.3f} MiB", b / 1048576.0); }

}  // namespace

nlohmann::json SummaryToJson(const EvalSummary& s) {
  nlohmann::json j = {{"positions", s.count}, {"nll", Vu(s.nll)}, {"ppl", Vu(s.ppl)}};
  if (!s.has_ref) return j;
  j["ref"] = {{"nll", Vu(s.nll_ref)}, {"ppl", Vu(s.ppl_ref)}};
  j["cor_ln_ppl"] = s.cor;
  j["ln_ppl_ratio"] = Vu(s.ln_ppl_ratio);
  j["ppl_ratio"] = Vu(s.ppl_ratio);
  j["ppl_diff"] = Vu(s.ppl_diff);
  j["kld"] = {{"mean", s.kld.value}, {"unc", s.kld.unc}, {"median", s.kld_median}, {"p90", s.kld_p90},
              {"p99", s.kld_p99}, {"p99_9", s.kld_p999}, {"max", s.kld_max},
              {"truncation_bound", s.kld_trunc_bound}};
  j["same_top"] = Vu(s.same_top);
  j["rms_dp"] = Vu(s.rms_dp);
  j["mean_dp"] = Vu(s.mean_dp);
  j["max_abs_dp"] = s.dp_max_abs;
  return j;
}

std::vector<size_t> ParetoFront(const std::vector<CompareRow>& rows) {
  std::vector<size_t> front;
  for (size_t i = 0; i < rows.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < rows.size() && !dominated; ++j) {
      if (i == j) continue;
      const auto &a = rows[j], &b = rows[i];
      const bool le = a.file_bytes <= b.file_bytes && a.summary.kld.value <= b.summary.kld.value;
      const bool lt = a.file_bytes < b.file_bytes || a.summary.kld.value < b.summary.kld.value;
      dominated = le && lt;
    }
    if (!dominated) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    return rows[a].file_bytes < rows[b].file_bytes ||
           (rows[a].file_bytes == rows[b].file_bytes && rows[a].summary.kld.value < rows[b].summary.kld.value);
  });
  return front;
}

std::string FormatCompareTable(const CompareReport& r) {
  std::string o = fmt::format("reference: {} ({}), PPL {:.4f} ± {:.4f}; {} protocol, n_ctx {}, KLD from top-{} "
                              "reference logits\n",
                              r.source, Mib(r.ref_file_bytes), r.ref_ppl, r.ref_ppl_unc, r.protocol, r.n_ctx, r.ref_k);
  o += fmt::format("{:<8} {:>12} {:>7} {:>20} {:>20} {:>10} {:>16} {:>8}\n", "type", "size", "bpw", "PPL", "ΔPPL",
                   "mean KLD", "same top", "time s");
  for (const auto& row : r.rows) {
    const auto& s = row.summary;
    o += fmt::format("{:<8} {:>12} {:>7.3f} {:>20} {:>20} {:>10.6f} {:>16} {:>8.1f}\n", row.type, Mib(row.file_bytes),
                     row.bits_per_weight, fmt::format("{:.4f} ± {:.4f}", s.ppl.value, s.ppl.unc),
                     fmt::format("{:+.4f} ± {:.4f}", s.ppl_diff.value, s.ppl_diff.unc), s.kld.value,
                     fmt::format("{:.2f} ± {:.2f} %", 100 * s.same_top.value, 100 * s.same_top.unc),
                     row.quantize_seconds + row.eval_seconds);
  }
  return o;
}

nlohmann::json CompareToJson(const CompareReport& r) {
  nlohmann::json rows = nlohmann::json::array();
  std::vector<size_t> front = ParetoFront(r.rows);
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    rows.push_back({{"type", row.type}, {"path", row.path}, {"file_bytes", row.file_bytes},
                    {"bits_per_weight", row.bits_per_weight}, {"quantize_seconds", row.quantize_seconds},
                    {"eval_seconds", row.eval_seconds},
                    {"pareto", std::find(front.begin(), front.end(), i) != front.end()},
                    {"eval", SummaryToJson(row.summary)}});
  }
  return {{"source", r.source}, {"text", r.text}, {"protocol", r.protocol}, {"n_ctx", r.n_ctx},
          {"ref_top_k", r.ref_k}, {"ref_file_bytes", r.ref_file_bytes},
          {"ref_ppl", {{"value", r.ref_ppl}, {"unc", r.ref_ppl_unc}}}, {"rows", rows}};
}

std::string CompareSvg(const CompareReport& r) {
  const double W = 720, H = 440, L = 80, R = 30, T = 30, B = 60;
  std::string o = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
                              "viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
  o += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"white\"/>\n", W, H);
  if (r.rows.empty()) return o + "<text x=\"20\" y=\"40\">no data</text>\n</svg>\n";
  double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = 0;
  for (const auto& row : r.rows) {
    const double x = row.file_bytes / 1048576.0, y = std::max(row.summary.kld.value, 1e-9);
    xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
  }
  const double xpad = std::max((xmax - xmin) * 0.08, xmax * 0.02 + 1e-9);
  xmin = std::max(0.0, xmin - xpad), xmax += xpad;
  double ly0 = std::floor(std::log10(ymin)), ly1 = std::ceil(std::log10(ymax));
  if (ly1 <= ly0) ly1 = ly0 + 1;
  auto px = [&](double x) { return L + (x - xmin) / (xmax - xmin) * (W - L - R); };
  auto py = [&](double y) { return H - B - (std::log10(std::max(y, 1e-9)) - ly0) / (ly1 - ly0) * (H - T - B); };
  // Axes, decade grid lines and ticks.
  o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>\n", L, H - B, W - R);
  o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", L, T, H - B);
  for (double e = ly0; e <= ly1 + 1e-9; e += 1) {
    const double y = py(std::pow(10.0, e));
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", L, y, W - R, y);
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">1e{}</text>\n", L - 6, y + 4, e);
  }
  for (int i = 0; i <= 5; ++i) {
    const double x = xmin + (xmax - xmin) * i / 5;
    o += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.3g}</text>\n", px(x), H - B + 18, x);
  }
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">file size (MiB)</text>\n", (L + W - R) / 2, H - 15);
  o += fmt::format("<text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">mean KLD "
                   "(nats, log scale)</text>\n", (T + H - B) / 2, (T + H - B) / 2);
  const std::vector<size_t> front = ParetoFront(r.rows);
  std::string pts;
  for (size_t i : front)
    pts += fmt::format("{:.1f},{:.1f} ", px(r.rows[i].file_bytes / 1048576.0), py(r.rows[i].summary.kld.value));
  o += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>\n", pts);
  for (size_t i = 0; i < r.rows.size(); ++i) {
    // Types that produced the same size and KLD (block-size fallbacks) share one point and one label.
    std::string label = r.rows[i].type;
    bool seen_before = false;
    for (size_t j = 0; j < r.rows.size(); ++j) {
      if (j == i || r.rows[j].file_bytes != r.rows[i].file_bytes ||
          r.rows[j].summary.kld.value != r.rows[i].summary.kld.value)
        continue;
      if (j < i) seen_before = true;
      else label += ", " + r.rows[j].type;
    }
    if (seen_before) continue;
    const bool on = std::find(front.begin(), front.end(), i) != front.end();
    const double x = px(r.rows[i].file_bytes / 1048576.0), y = py(r.rows[i].summary.kld.value);
    o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"><title>{}: {}, KLD {:.6f}</title>"
                     "</circle>\n", x, y, on ? "#d62728" : "#1f77b4", Escape(label), Mib(r.rows[i].file_bytes),
                     r.rows[i].summary.kld.value);
    const bool right = x > W - 160;  // keep labels of the largest files inside the plot
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\"{}>{}</text>\n", right ? x - 8 : x + 8, y - 8,
                     right ? "end" : "start", on ? " font-weight=\"bold\"" : "", Escape(label));
  }
  return o + "</svg>\n";
}

std::string CompareToHtml(const CompareReport& r) {
  std::string o = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>qforge compare</title>\n"
                  "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
                  "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
                  "tr.pareto td:first-child{font-weight:bold;color:#d62728}</style></head><body>\n";
  o += fmt::format("<h1>qforge compare: {}</h1>\n<p>Text <code>{}</code>, {} protocol, n_ctx {}. Reference "
                   "(unquantized, {}): PPL {:.4f} ± {:.4f}. KLD against the reference's saved top-{} logits. "
                   "Red: Pareto front (no other type is both smaller and closer to the reference).</p>\n",
                   Escape(r.source), Escape(r.text), Escape(r.protocol), r.n_ctx, Mib(r.ref_file_bytes), r.ref_ppl,
                   r.ref_ppl_unc, r.ref_k);
  o += CompareSvg(r);
  o += "<table>\n<tr><th>type</th><th>file size</th><th>bits/weight</th><th>PPL</th><th>ΔPPL</th><th>mean KLD</th>"
       "<th>99% KLD</th><th>same top</th><th>RMS Δp</th><th>quantize s</th><th>eval s</th></tr>\n";
  const std::vector<size_t> front = ParetoFront(r.rows);
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    const auto& s = row.summary;
    const bool on = std::find(front.begin(), front.end(), i) != front.end();
    o += fmt::format("<tr{}><td>{}</td><td>{}</td><td>{:.3f}</td><td>{:.4f} ± {:.4f}</td><td>{:+.4f} ± {:.4f}</td>"
                     "<td>{:.6f} ± {:.6f}</td><td>{:.6f}</td><td>{:.2f} %</td><td>{:.3f} %</td><td>{:.1f}</td>"
                     "<td>{:.1f}</td></tr>\n",
                     on ? " class=\"pareto\"" : "", Escape(row.type), Mib(row.file_bytes), row.bits_per_weight,
                     s.ppl.value, s.ppl.unc, s.ppl_diff.value, s.ppl_diff.unc, s.kld.value, s.kld.unc, s.kld_p99,
                     100 * s.same_top.value, 100 * s.rms_dp.value, row.quantize_seconds, row.eval_seconds);
  }
  return o + "</table>\n</body></html>\n";
}

}  // namespace qforge::eval
