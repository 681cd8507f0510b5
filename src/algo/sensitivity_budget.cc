// From a measurement and a byte budget to one type per tensor: the knapsack over the measured candidates,
// with the user's --tensor-type choices and the non-quantizable tensors counted as fixed sizes.
#include <algorithm>
#include <map>
#include <regex>

#include <fmt/format.h>

#include "qforge/algo/allocator.h"
#include "qforge/algo/sensitivity.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

uint64_t Padded(uint64_t bytes) { return (bytes + kGgufDefaultAlignment - 1) / kGgufDefaultAlignment * kGgufDefaultAlignment; }

std::string ExactNamePattern(const std::string& name) {
  std::string out = "^";
  for (char c : name) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out + "$";
}

// Encoded size of one GGUF value (the writer's layout: scalars at their width, strings as u64 length +
// bytes, arrays as u32 element type + u64 count + elements).
uint64_t ValueBytes(const MetaValue& v) {
  switch (v.type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::STRING: return 8 + v.s.size();
    case GgufValueType::ARRAY: {
      uint64_t n = 4 + 8;
      for (const auto& e : v.array) n += ValueBytes(e);
      return n;
    }
  }
  return 0;
}

}  // namespace

std::vector<bool> QuantizableTensors(const SourceModel& model) {
  Policy probe;
  probe.name = "probe";
  probe.base = GgmlType::Q8_0;
  std::vector<bool> mask;
  for (const auto& c : PlanTensorTypes(probe, model)) mask.push_back(c.wanted != GgmlType::F32);
  return mask;
}

uint64_t GgufHeaderBytes(const Metadata& metadata, const SourceModel& model) {
  uint64_t n = 4 + 4 + 8 + 8;  // magic, version, tensor count, key/value count
  for (const auto& [key, value] : metadata.entries()) n += 8 + key.size() + 4 + ValueBytes(value);
  for (const auto& t : model.tensors) n += 8 + t.name.size() + 4 + 8 * t.ne.size() + 4 + 8;
  return Padded(n);
}

StatusOr<BudgetPlan> PlanBudget(const Measurement& m, const SourceModel& model, const BudgetRequest& request) {
  std::map<std::string, const TensorSensitivity*> measured;
  for (const auto& t : m.tensors) measured[t.name] = &t;

  // The user's overrides, through the policy code so their fallbacks are the usual ones.
  Policy user;
  user.name = "user";
  user.base = GgmlType::Q8_0;
  std::vector<std::regex> patterns;
  for (const auto& spec : request.overrides) {
    QF_RETURN_IF_ERROR(AddUserOverride(&user, spec));
    patterns.emplace_back(user.rules.back().pattern);
  }
  const std::vector<TensorChoice> user_plan = PlanTensorTypes(user, model);
  const std::vector<bool> mask = QuantizableTensors(model);

  // Sizes as the constraint counts them: padded to the alignment for a file-size budget.
  const auto size = [&](uint64_t bytes) { return request.padded ? Padded(bytes) : bytes; };
  BudgetPlan plan;
  plan.budget = request.tensor_bytes;
  std::vector<KnapsackItem> items;
  std::vector<size_t> item_tensor;  // model index of each item
  uint64_t fixed = 0;
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const SourceTensor& t = model.tensors[i];
    BudgetChoice c;
    c.name = t.name;
    c.quantizable = mask[i];
    plan.params += t.numel();
    const bool by_user = mask[i] && std::any_of(patterns.begin(), patterns.end(),
                                                [&](const std::regex& r) { return std::regex_search(t.name, r); });
    if (!mask[i] || by_user) {
      c.type = by_user ? user_plan[i].type : GgmlType::F32;
      c.user = by_user;
      QF_ASSIGN_OR_RETURN(uint64_t b, GgufTensorBytes(c.type, t.ne));
      c.bytes = size(b);
      fixed += c.bytes;
    } else {
      auto it = measured.find(t.name);
      if (it == measured.end())
        return Status::Error("the measurement has no entry for tensor " + t.name + " (measured another model?)");
      KnapsackItem item;
      for (const auto& cand : it->second->candidates) item.options.push_back({size(cand.bytes), cand.damage});
      items.push_back(std::move(item));
      item_tensor.push_back(i);
    }
    plan.tensors.push_back(c);
  }
  if (fixed > request.tensor_bytes)
    return Status::Error(fmt::format("the budget of {} bytes is below the {} bytes of tensors whose type is fixed "
                                     "(norms, 1-D tensors, --tensor-type)",
                                     request.tensor_bytes, fixed));
  QF_ASSIGN_OR_RETURN(KnapsackSolution sol, SolveKnapsack(items, request.tensor_bytes - fixed));
  plan.proven_optimal = sol.proven_optimal;
  plan.method = sol.method;
  for (size_t k = 0; k < items.size(); ++k) {
    BudgetChoice& c = plan.tensors[item_tensor[k]];
    const CandidateSensitivity& cand = measured[c.name]->candidates[sol.choice[k]];
    c.type = cand.type;
    c.bytes = size(cand.bytes);
    c.damage = cand.damage;
  }

  // The policy: overrides first (as the user wrote them), then one exact rule per allocated tensor.
  plan.policy.name = "budget";
  std::map<GgmlType, uint64_t> bytes_by_type;
  for (const auto& c : plan.tensors) {
    plan.bytes += c.bytes;
    plan.damage += c.damage;
    if (c.quantizable) bytes_by_type[c.type] += c.bytes;
  }
  GgmlType dominant = GgmlType::F16;
  uint64_t most = 0;
  for (const auto& [t, b] : bytes_by_type)
    if (b > most) most = b, dominant = t;
  plan.policy.base = dominant;
  // general.file_type: the named mix or plain type of the type holding most bytes (display only).
  plan.policy.llama_ftype = 1;
  for (const std::string& name : {std::string(GgmlTypeName(dominant)), std::string(GgmlTypeName(dominant)) + "_M"}) {
    auto p = MakePolicy(name, ModelFactsFromSource(model));
    if (p.ok()) {
      plan.policy.llama_ftype = p->llama_ftype;
      break;
    }
  }
  for (const auto& spec : request.overrides) QF_RETURN_IF_ERROR(AddUserOverride(&plan.policy, spec));
  for (size_t k = 0; k < items.size(); ++k) {
    const BudgetChoice& c = plan.tensors[item_tensor[k]];
    plan.policy.rules.push_back({ExactNamePattern(c.name), LayerSelector::kAll, c.type,
                                 fmt::format("budget: predicted KLD {:.3g}", c.damage), false});
  }
  return plan;
}

}  // namespace qforge
