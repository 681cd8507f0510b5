// Policy as data: which type each tensor gets, as an ordered list of rules (tensor-name pattern and
// layer selector -> type). Named mixes (Q4_K_M, Q3_K_S, ...) reproduce llama.cpp's choices for Llama-family
// models (src/llama-quant.cpp, llama.cpp bundle v0.4.0) as rules instead of an if-chain; user overrides
// (--tensor-type PATTERN=TYPE) are placed first and always win; `--dry-run` prints the rules and the plan.
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// Which layers a rule applies to (n = number of layers, i = the tensor's layer from "blk.<i>.").
enum class LayerSelector {
  kAll,             // every tensor the pattern matches (layered or not)
  kMoreBits,        // llama.cpp's use_more_bits: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
  kFirstEighth,     // i < n/8
  kFirstSixteenth,  // i < n/16
  kFirstTwo,        // i < 2
  kFirstFour,       // i < 4
};
std::string_view LayerSelectorName(LayerSelector s);

struct PolicyRule {
  std::string pattern;  // ECMAScript regex searched in the tensor name
  LayerSelector layers = LayerSelector::kAll;
  GgmlType type = GgmlType::F32;
  std::string why;      // shown by --dry-run
  bool user = false;    // from --tensor-type
};

struct Policy {
  std::string name;           // "Q4_K_M", or a plain type name
  GgmlType base = GgmlType::F16;  // type of every quantizable tensor no rule matches
  uint32_t llama_ftype = 1;   // general.file_type to record
  std::vector<PolicyRule> rules;
};

// Facts about the model the named mixes depend on.
struct ModelFacts {
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  bool has_output = true;  // false: output is tied to token_embd, which then follows the output rule
  bool has_imatrix = false;
};
ModelFacts ModelFactsFromSource(const SourceModel& model);

// Names accepted by --type: the mixes above and plain type names (F32, F16, BF16, Q8_0, Q4_0, ...).
std::vector<std::string> PolicyNames();
StatusOr<Policy> MakePolicy(const std::string& name, const ModelFacts& facts);
// Parses "PATTERN=TYPE" and puts it before the policy's own rules.
Status AddUserOverride(Policy* policy, const std::string& spec);

// The decision for one tensor.
struct TensorChoice {
  std::string name;
  GgmlType wanted = GgmlType::F32;  // what the rules asked for
  GgmlType type = GgmlType::F32;    // what is stored (after a block-size fallback)
  std::string reason;               // the rule (or "1-D / norm: kept F32")
  bool fallback = false;            // wanted != type because ne[0] is not a multiple of the block size
};

// Applies the policy to every tensor of the model, in order. Tensors that are not quantizable (1-D,
// norms, names not ending in "weight") stay F32. Fallbacks follow llama.cpp: Q2_K/Q3_K -> Q4_0,
// Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL, then F16 if even that does not fit.
std::vector<TensorChoice> PlanTensorTypes(const Policy& policy, const SourceModel& model);

// The block-size fallback alone (exposed for tests): the stored type for `wanted` on rows of length ne0.
GgmlType FallbackType(GgmlType wanted, uint64_t ne0);

}  // namespace qforge
