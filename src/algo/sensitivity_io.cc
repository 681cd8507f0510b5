// The measurement file: JSON with a format tag and version, written atomically; the reader checks every
// field it uses (the file may be stale, hand-edited or from another tool).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "qforge/algo/sensitivity.h"
#include "qforge/core/atomic_file.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

using nlohmann::json;
constexpr char kFormat[] = "qforge-sensitivity";

StatusOr<GgmlType> TypeFromJson(const json& j, const std::string& path) {
  if (!j.is_string()) return Status::Error("a candidate type is not a string", path);
  auto t = GgmlTypeFromName(j.get<std::string>());
  if (!t) return Status::Error("unknown type '" + j.get<std::string>() + "'", path);
  return *t;
}

StatusOr<double> NonNegative(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || !j[key].is_number()) return Status::Error(fmt::format("missing number '{}'", key), path);
  const double v = j[key].get<double>();
  if (!std::isfinite(v) || v < 0) return Status::Error(fmt::format("'{}' is {} (must be finite and >= 0)", key, v), path);
  return v;
}

}  // namespace

Status SaveMeasurement(const Measurement& m, const std::string& path) {
  json j;
  j["format"] = kFormat;
  j["version"] = m.version;
  j["model"] = {{"path", m.model_path}, {"file_bytes", m.model_file_bytes}};
  j["calibration"] = {{"file", m.calib_file}, {"chunks", m.chunks}, {"chunk_tokens", m.chunk_tokens}};
  j["scales"] = {{"global", m.global_scale}, {"kinds", m.kind_scale}};
  j["fit"] = {{"loo_log_corr_kind", m.fit_log_corr_kind},
              {"loo_median_abs_log_ratio_kind", m.fit_median_abs_log_ratio_kind},
              {"loo_median_abs_log_ratio_tensor", m.fit_median_abs_log_ratio_tensor},
              {"probes", m.probes.size()}};
  json probes = json::array();
  for (const auto& p : m.probes)
    probes.push_back({{"tensor", p.tensor}, {"type", GgmlTypeName(p.type)}, {"error", p.error}, {"kld", p.kld}});
  j["probes"] = probes;
  json tensors = json::array();
  for (const auto& t : m.tensors) {
    json cands = json::array();
    for (const auto& c : t.candidates)
      cands.push_back({{"type", GgmlTypeName(c.type)}, {"bytes", c.bytes}, {"error", c.error}, {"damage", c.damage}});
    tensors.push_back({{"name", t.name}, {"ne", t.ne}, {"scale", t.scale}, {"scale_source", t.scale_source},
                       {"candidates", cands}});
  }
  j["tensors"] = tensors;
  const std::string text = j.dump(1) + "\n";
  QF_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  QF_RETURN_IF_ERROR(f.Write(text.data(), text.size()));
  return f.Commit();
}

StatusOr<Measurement> LoadMeasurement(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error("cannot open the measurement file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Error("not valid JSON", path);
  if (!j.contains("format") || j["format"] != kFormat) return Status::Error("not a qforge measurement file", path);
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != kMeasurementVersion)
    return Status::Error(fmt::format("unsupported measurement version (this qforge reads version {})",
                                     kMeasurementVersion),
                         path);
  Measurement m;
  try {
    m.model_path = j.at("model").at("path").get<std::string>();
    m.model_file_bytes = j.at("model").at("file_bytes").get<uint64_t>();
    m.calib_file = j.at("calibration").at("file").get<std::string>();
    m.chunks = j.at("calibration").at("chunks").get<int>();
    m.chunk_tokens = j.at("calibration").at("chunk_tokens").get<int>();
    for (const auto& p : j.at("probes")) {
      KldProbe kp;
      kp.tensor = p.at("tensor").get<std::string>();
      QF_ASSIGN_OR_RETURN(kp.type, TypeFromJson(p.at("type"), path));
      QF_ASSIGN_OR_RETURN(kp.error, NonNegative(p, "error", path));
      QF_ASSIGN_OR_RETURN(kp.kld, NonNegative(p, "kld", path));
      m.probes.push_back(kp);
    }
    for (const auto& t : j.at("tensors")) {
      TensorSensitivity ts;
      ts.name = t.at("name").get<std::string>();
      ts.ne = t.at("ne").get<std::vector<uint64_t>>();
      if (t.at("candidates").empty()) return Status::Error("tensor " + ts.name + " has no candidates", path);
      for (const auto& c : t.at("candidates")) {
        CandidateSensitivity cs;
        QF_ASSIGN_OR_RETURN(cs.type, TypeFromJson(c.at("type"), path));
        cs.bytes = c.at("bytes").get<uint64_t>();
        auto want = GgufTensorBytes(cs.type, ts.ne);
        if (!want.ok() || *want != cs.bytes)
          return Status::Error(fmt::format("tensor {}: {} bytes for {} do not match its shape", ts.name, cs.bytes,
                                           GgmlTypeName(cs.type)),
                               path);
        QF_ASSIGN_OR_RETURN(cs.error, NonNegative(c, "error", path));
        ts.candidates.push_back(cs);
      }
      m.tensors.push_back(std::move(ts));
    }
  } catch (const json::exception& e) {
    return Status::Error(std::string("malformed measurement: ") + e.what(), path);
  }
  // Damages are recomputed from the probes, so an edited scale or damage cannot disagree with them.
  FitDamageScales(&m);
  return m;
}

Status CheckMeasurementMatches(const Measurement& m, const SourceModel& model, uint64_t model_file_bytes,
                               const std::string& measure_path) {
  if (m.model_file_bytes != model_file_bytes)
    return Status::Error(fmt::format("measured on {} ({} bytes), but this model file has {} bytes: measure again",
                                     m.model_path, m.model_file_bytes, model_file_bytes),
                         measure_path);
  for (const auto& t : m.tensors) {
    const SourceTensor* s = model.FindTensor(t.name);
    if (s == nullptr) return Status::Error("measured tensor " + t.name + " is not in the model", measure_path);
    if (s->ne != t.ne) return Status::Error("tensor " + t.name + " has another shape in the model", measure_path);
  }
  return Status::Ok();
}

}  // namespace qforge
