// The named mixes as rule tables, and the planner that applies rules, overrides and fallbacks.
// Each mix lists only where it differs from its base type; the rules transcribe llama.cpp's
// llama_tensor_get_type_impl for the "llama" architecture with one expert (no 70B / Falcon special cases).
#include "qforge/algo/policy.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace qforge {
namespace {

using GT = GgmlType;
using LS = LayerSelector;

struct MixDef {
  const char* name;
  GT base;
  uint32_t ftype;
};

// Type names accepted by --type, with llama.cpp's LLAMA_FTYPE numbers.
constexpr MixDef kMixes[] = {
    {"F32", GT::F32, 0},       {"F16", GT::F16, 1},        {"BF16", GT::BF16, 32},    {"Q8_0", GT::Q8_0, 7},
    {"Q4_0", GT::Q4_0, 2},     {"Q4_1", GT::Q4_1, 3},      {"Q5_0", GT::Q5_0, 8},     {"Q5_1", GT::Q5_1, 9},
    {"Q2_K", GT::Q2_K, 10},    {"Q3_K_S", GT::Q3_K, 11},   {"Q3_K_M", GT::Q3_K, 12},  {"Q3_K_L", GT::Q3_K, 13},
    {"Q4_K_S", GT::Q4_K, 14},  {"Q4_K_M", GT::Q4_K, 15},   {"Q5_K_S", GT::Q5_K, 16},  {"Q5_K_M", GT::Q5_K, 17},
    {"Q6_K", GT::Q6_K, 18},    {"IQ4_NL", GT::IQ4_NL, 25}, {"IQ4_XS", GT::IQ4_XS, 30},
    // Pure single-type plans (no mix rules); recorded with the nearest llama.cpp file type.
    {"Q3_K", GT::Q3_K, 12},    {"Q4_K", GT::Q4_K, 15},     {"Q5_K", GT::Q5_K, 17},
};

void AddMixRules(const std::string& mix, const ModelFacts& f, std::vector<PolicyRule>* rules) {
  auto add = [rules](const char* pattern, LS layers, GT type, const char* why) {
    rules->push_back({pattern, layers, type, why, false});
  };
  const int n_gqa = f.n_head_kv > 0 ? f.n_head / f.n_head_kv : 1;
  const char* attn_v = R"(\.attn_v\.weight$)";
  const char* ffn_down = R"(\.ffn_down\.weight$)";
  const char* attn_out = R"(\.attn_output\.weight$)";
  if (mix == "Q2_K") {
    add(attn_v, LS::kAll, n_gqa >= 4 ? GT::Q4_K : GT::Q3_K, "Q2_K: attn_v one step up (Q4_K if GQA >= 4)");
    add(ffn_down, LS::kAll, GT::Q3_K, "Q2_K: ffn_down Q3_K");
    add(attn_out, LS::kAll, GT::Q3_K, "Q2_K: attn_output Q3_K");
  } else if (mix == "Q3_K_M") {
    add(attn_v, LS::kFirstTwo, GT::Q5_K, "Q3_K_M: attn_v of the first 2 layers Q5_K");
    add(attn_v, LS::kAll, GT::Q4_K, "Q3_K_M: attn_v Q4_K");
    add(ffn_down, LS::kFirstSixteenth, GT::Q5_K, "Q3_K_M: ffn_down of the first n/16 layers Q5_K");
    add(ffn_down, LS::kAll, GT::Q4_K, "Q3_K_M: ffn_down Q4_K");
    add(attn_out, LS::kAll, GT::Q4_K, "Q3_K_M: attn_output Q4_K");
  } else if (mix == "Q3_K_L") {
    add(attn_v, LS::kAll, GT::Q5_K, "Q3_K_L: attn_v Q5_K");
    add(ffn_down, LS::kAll, GT::Q5_K, "Q3_K_L: ffn_down Q5_K");
    add(attn_out, LS::kAll, GT::Q5_K, "Q3_K_L: attn_output Q5_K");
  } else if (mix == "Q4_K_S") {
    add(attn_v, LS::kFirstFour, GT::Q5_K, "Q4_K_S: attn_v of the first 4 layers Q5_K");
    add(ffn_down, LS::kFirstEighth, GT::Q5_K, "Q4_K_S: ffn_down of the first n/8 layers Q5_K");
  } else if (mix == "Q4_K_M" || mix == "Q5_K_M") {
    add(attn_v, LS::kMoreBits, GT::Q6_K, "_K_M: attn_v on use_more_bits layers Q6_K");
    add(ffn_down, LS::kMoreBits, GT::Q6_K, "_K_M: ffn_down on use_more_bits layers Q6_K");
  } else if (mix == "IQ4_NL" || mix == "IQ4_XS") {
    if (n_gqa >= 4) add(attn_v, LS::kAll, GT::Q5_K, "IQ4: attn_v Q5_K when GQA >= 4");
    if (!f.has_imatrix) add(ffn_down, LS::kFirstEighth, GT::Q5_K, "IQ4 without imatrix: first n/8 ffn_down Q5_K");
  }
}

bool Quantizable(const SourceTensor& t) {
  const std::string& n = t.name;
  if (t.ne.size() < 2) return false;
  if (n.size() < 6 || n.compare(n.size() - 6, 6, "weight") != 0) return false;
  return n.find("_norm.weight") == std::string::npos;
}

int LayerOf(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

bool LayerMatches(LS s, int i, int n) {
  if (s == LS::kAll) return true;
  if (i < 0) return false;
  switch (s) {
    case LS::kMoreBits: return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    case LS::kFirstEighth: return i < n / 8;
    case LS::kFirstSixteenth: return i < n / 16;
    case LS::kFirstTwo: return i < 2;
    case LS::kFirstFour: return i < 4;
    default: return true;
  }
}

}  // namespace

std::string_view LayerSelectorName(LayerSelector s) {
  switch (s) {
    case LS::kAll: return "all";
    case LS::kMoreBits: return "use_more_bits";
    case LS::kFirstEighth: return "i<n/8";
    case LS::kFirstSixteenth: return "i<n/16";
    case LS::kFirstTwo: return "i<2";
    case LS::kFirstFour: return "i<4";
  }
  return "?";
}

ModelFacts ModelFactsFromSource(const SourceModel& model) {
  ModelFacts f;
  const std::string arch = model.metadata.GetString("general.architecture").value_or("llama");
  f.n_layer = static_cast<int>(model.metadata.GetInt(arch + ".block_count").value_or(0));
  f.n_head = static_cast<int>(model.metadata.GetInt(arch + ".attention.head_count").value_or(0));
  f.n_head_kv = static_cast<int>(model.metadata.GetInt(arch + ".attention.head_count_kv").value_or(f.n_head));
  f.has_output = model.FindTensor("output.weight") != nullptr;
  return f;
}

std::vector<std::string> PolicyNames() {
  std::vector<std::string> names;
  for (const auto& m : kMixes) names.emplace_back(m.name);
  return names;
}

StatusOr<Policy> MakePolicy(const std::string& name, const ModelFacts& facts) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  const MixDef* mix = nullptr;
  for (const auto& m : kMixes)
    if (upper == m.name) mix = &m;
  if (mix == nullptr) {
    std::string known;
    for (const auto& n : PolicyNames()) known += (known.empty() ? "" : ", ") + n;
    return Status::Error(fmt::format("unknown type '{}' (known: {})", name, known));
  }
  Policy p;
  p.name = mix->name;
  p.base = mix->base;
  p.llama_ftype = mix->ftype;
  if (!IsFloatGgmlType(p.base)) {
    // The classifier is the most sensitive tensor: Q6_K unless the whole model is Q8_0 (llama.cpp).
    GT out = p.base == GT::Q8_0 ? GT::Q8_0 : GT::Q6_K;
    p.rules.push_back({R"(^output\.weight$)", LS::kAll, out, "output (classifier) kept at higher precision", false});
    if (!facts.has_output) {
      p.rules.push_back({R"(^token_embd\.weight$)", LS::kAll, out, "token_embd is tied to the output", false});
    }
    AddMixRules(p.name, facts, &p.rules);
  }
  return p;
}

Status AddUserOverride(Policy* policy, const std::string& spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return Status::Error(fmt::format("--tensor-type '{}' must be PATTERN=TYPE", spec));
  }
  const std::string pattern = spec.substr(0, eq);
  auto type = GgmlTypeFromName(spec.substr(eq + 1));
  if (!type) return Status::Error(fmt::format("--tensor-type '{}': unknown type '{}'", spec, spec.substr(eq + 1)));
  try {
    std::regex check(pattern);
  } catch (const std::regex_error& e) {
    return Status::Error(fmt::format("--tensor-type '{}': invalid pattern: {}", spec, e.what()));
  }
  // Overrides go before every built-in rule (and after earlier overrides), so they always win.
  auto pos = std::find_if(policy->rules.begin(), policy->rules.end(), [](const PolicyRule& r) { return !r.user; });
  policy->rules.insert(pos, {pattern, LS::kAll, *type, "user override --tensor-type " + spec, true});
  return Status::Ok();
}

GgmlType FallbackType(GgmlType wanted, uint64_t ne0) {
  const auto fits = [ne0](GT t) { return ne0 % GgmlLayout(t).block_size == 0; };
  if (fits(wanted)) return wanted;
  GT next = wanted;
  switch (wanted) {
    case GT::Q2_K: case GT::Q3_K: next = GT::Q4_0; break;
    case GT::Q4_K: next = GT::Q5_0; break;
    case GT::Q5_K: next = GT::Q5_1; break;
    case GT::Q6_K: next = GT::Q8_0; break;
    case GT::IQ4_XS: next = GT::IQ4_NL; break;
    default: break;
  }
  return fits(next) ? next : GT::F16;
}

std::vector<TensorChoice> PlanTensorTypes(const Policy& policy, const SourceModel& model) {
  std::vector<std::regex> compiled;
  compiled.reserve(policy.rules.size());
  for (const auto& r : policy.rules) compiled.emplace_back(r.pattern);
  const int n_layer = static_cast<int>(ModelFactsFromSource(model).n_layer);

  std::vector<TensorChoice> plan;
  plan.reserve(model.tensors.size());
  for (const auto& t : model.tensors) {
    TensorChoice c;
    c.name = t.name;
    if (!Quantizable(t)) {
      c.wanted = c.type = GT::F32;
      c.reason = "1-D / norm / non-weight: kept F32";
      plan.push_back(std::move(c));
      continue;
    }
    c.wanted = policy.base;
    c.reason = fmt::format("base type of {}", policy.name);
    const int layer = LayerOf(t.name);
    for (size_t i = 0; i < policy.rules.size(); ++i) {
      const PolicyRule& r = policy.rules[i];
      if (std::regex_search(t.name, compiled[i]) && (r.user || LayerMatches(r.layers, layer, n_layer))) {
        c.wanted = r.type;
        c.reason = r.why;
        break;
      }
    }
    c.type = FallbackType(c.wanted, t.ne[0]);
    c.fallback = c.type != c.wanted;
    plan.push_back(std::move(c));
  }
  return plan;
}

}  // namespace qforge
