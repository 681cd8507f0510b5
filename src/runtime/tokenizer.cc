// The Tokenizer's shared half: reading and validating tokenizer.ggml.* metadata, splitting text around
// user-defined tokens, pieces and Decode. The two merge algorithms live in tokenizer_spm.cc and
// tokenizer_bpe.cc. Defaults and key meanings follow llama.cpp's llama_vocab::impl::load.
#include "qforge/runtime/tokenizer.h"

#include <algorithm>
#include <string>

#include "unicode_ranges.h"

namespace qforge {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

Status KeyError(std::string_view key, const std::string& what) {
  return Status::Error("tokenizer metadata " + std::string(key) + ": " + what);
}

// The array under `key`, or null if absent; an error if present but not an array of an accepted type.
StatusOr<const MetaValue*> FindArray(const Metadata& m, std::string_view key,
                                     std::initializer_list<GgufValueType> elem_types) {
  const MetaValue* v = m.Find(key);
  if (v == nullptr) return static_cast<const MetaValue*>(nullptr);
  if (v->type != GgufValueType::ARRAY) return KeyError(key, "expected an array, found " +
                                                                std::string(GgufValueTypeName(v->type)));
  if (std::find(elem_types.begin(), elem_types.end(), v->elem_type) == elem_types.end())
    return KeyError(key, "unexpected element type " + std::string(GgufValueTypeName(v->elem_type)));
  return v;
}

// llama.cpp marks tokens with these texts as control (end-of-generation) whatever their stored type
// ("control-looking token ... was not control-type"), which hides their piece and their literal match.
bool IsControlLooking(std::string_view t) {
  static constexpr std::string_view kTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
      "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
      "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["};
  return std::find(std::begin(kTexts), std::end(kTexts), t) != std::end(kTexts);
}

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }
int HexValue(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s->find(from, pos)) != std::string::npos; pos = hit + from.size())
    out.append(*s, pos, hit - pos).append(to);
  if (pos == 0) return;
  out.append(*s, pos);
  *s = std::move(out);
}

}  // namespace

StatusOr<Tokenizer> Tokenizer::FromMetadata(const Metadata& m) {
  Tokenizer t;
  const auto model = m.GetString("tokenizer.ggml.model");
  if (!model) return KeyError("tokenizer.ggml.model", "missing (or not a string)");
  if (*model == "llama") {
    t.kind_ = Kind::kSpm;
    t.add_bos_ = true;
    t.add_space_prefix_ = true;
  } else if (*model == "gpt2") {
    t.kind_ = Kind::kBpe;
    const std::string pre = m.GetString("tokenizer.ggml.pre").value_or("default");
    // Aliases as llama.cpp groups them; the regexes of each group are identical.
    if (pre == "default" || pre == "gpt-2" || pre == "phi-2" || pre == "mpt" || pre == "olmo") {
      t.pre_ = Pre::kGpt2;
    } else if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "dbrx" || pre == "smaug-bpe") {
      t.pre_ = Pre::kLlama3;
      t.ignore_merges_ = pre != "dbrx" && pre != "smaug-bpe";
      t.add_bos_ = true;
    } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2") {
      t.pre_ = Pre::kQwen2;
    } else {
      return KeyError("tokenizer.ggml.pre", "unsupported pre-tokenizer '" + pre + "'");
    }
  } else {
    return KeyError("tokenizer.ggml.model", "unknown tokenizer model '" + *model + "' (expected llama or gpt2)");
  }
  if (const MetaValue* v = m.Find("tokenizer.ggml.add_space_prefix")) {
    if (!v->AsInt()) return KeyError("tokenizer.ggml.add_space_prefix", "expected a bool");
    t.add_space_prefix_ = *v->AsInt() != 0;
  }
  QF_RETURN_IF_ERROR(t.BuildVocab(m));
  if (t.kind_ == Kind::kBpe) QF_RETURN_IF_ERROR(t.BuildMerges(m));
  QF_RETURN_IF_ERROR(t.ReadSpecialIds(m));
  return t;
}

Status Tokenizer::BuildVocab(const Metadata& m) {
  QF_ASSIGN_OR_RETURN(const MetaValue* tokens, FindArray(m, "tokenizer.ggml.tokens", {GgufValueType::STRING}));
  if (tokens == nullptr || tokens->array.empty()) return KeyError("tokenizer.ggml.tokens", "missing or empty");
  const size_t n = tokens->array.size();
  if (n > static_cast<size_t>(INT32_MAX)) return KeyError("tokenizer.ggml.tokens", "too many tokens");
  QF_ASSIGN_OR_RETURN(const MetaValue* scores, FindArray(m, "tokenizer.ggml.scores",
                                                         {GgufValueType::F32, GgufValueType::I32}));
  QF_ASSIGN_OR_RETURN(const MetaValue* types, FindArray(m, "tokenizer.ggml.token_type",
                                                        {GgufValueType::I32, GgufValueType::U32}));
  for (auto [key, arr] : {std::pair{"tokenizer.ggml.scores", scores}, std::pair{"tokenizer.ggml.token_type", types}}) {
    if (arr != nullptr && arr->array.size() != n)
      return KeyError(key, "holds " + std::to_string(arr->array.size()) + " entries but tokenizer.ggml.tokens holds " +
                               std::to_string(n));
  }
  tokens_.resize(n);
  scores_.assign(n, 0.0f);
  types_.assign(n, TokenType::kNormal);
  token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    tokens_[i] = tokens->array[i].s;
    // llama.cpp renames empty pieces so that every token keeps a distinct, non-empty text.
    if (tokens_[i].empty()) tokens_[i] = "[EMPTY_" + std::to_string(i) + "]";
    if (scores != nullptr) scores_[i] = static_cast<float>(scores->array[i].AsFloat().value_or(0.0));
    if (types != nullptr) {
      const int64_t type = types->array[i].AsInt().value_or(-1);
      if (type < 0 || type > static_cast<int64_t>(TokenType::kByte))
        return KeyError("tokenizer.ggml.token_type", "token " + std::to_string(i) + " has invalid type " +
                                                         std::to_string(type));
      types_[i] = static_cast<TokenType>(type);
    }
    if (IsControlLooking(tokens_[i])) types_[i] = TokenType::kControl;
    token_to_id_[tokens_[i]] = static_cast<int32_t>(i);  // a duplicate piece: the last id wins, as in llama.cpp
    if (types_[i] == TokenType::kUserDefined) user_defined_.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(user_defined_.begin(), user_defined_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });
  // SentencePiece byte fallback: "<0xNN>", else a one-byte piece (llama.cpp's byte_to_token order).
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char piece[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    int32_t id = Find(std::string_view(piece, 6));
    if (id < 0) id = Find(std::string(1, static_cast<char>(b)));
    byte_token_[b] = id;
  }
  return Status::Ok();
}

Status Tokenizer::BuildMerges(const Metadata& m) {
  QF_ASSIGN_OR_RETURN(const MetaValue* merges, FindArray(m, "tokenizer.ggml.merges", {GgufValueType::STRING}));
  if (merges == nullptr) return KeyError("tokenizer.ggml.merges", "missing (required by gpt2 vocabularies)");
  bpe_ranks_.reserve(merges->array.size());
  for (size_t i = 0; i < merges->array.size(); ++i) {
    const std::string& merge = merges->array[i].s;
    // The separator is the first space after position 0, so a left part may itself start with a space.
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (space == std::string::npos)
      return KeyError("tokenizer.ggml.merges", "entry " + std::to_string(i) + " '" + merge +
                                                   "' is not two pieces separated by a space");
    bpe_ranks_.emplace(merge, static_cast<int32_t>(i));  // emplace: the first (lowest) rank wins
  }
  return Status::Ok();
}

Status Tokenizer::ReadSpecialIds(const Metadata& m) {
  const int32_t n = n_vocab();
  if (kind_ == Kind::kSpm) {
    bos_ = 1, eos_ = 2, unk_ = 0;
  } else {
    bos_ = 11, eos_ = 11, unk_ = -1;
  }
  // Defaults that do not fit the vocabulary are dropped, as llama.cpp does; explicit ids must fit.
  for (int32_t* id : {&bos_, &eos_, &unk_})
    if (*id >= n) *id = -1;
  for (auto [key, id] : {std::pair{"tokenizer.ggml.bos_token_id", &bos_}, std::pair{"tokenizer.ggml.eos_token_id", &eos_},
                         std::pair{"tokenizer.ggml.unknown_token_id", &unk_}}) {
    const MetaValue* v = m.Find(key);
    if (v == nullptr) continue;
    const auto value = v->AsInt();
    if (!value) return KeyError(key, "expected an integer");
    if (*value == -1 || *value == 0xFFFFFFFFll) {  // converters write -1 for "no such token"
      *id = -1;
      continue;
    }
    if (*value < 0 || *value >= n)
      return KeyError(key, "token id " + std::to_string(*value) + " is out of range (vocabulary of " +
                               std::to_string(n) + " tokens)");
    *id = static_cast<int32_t>(*value);
  }
  for (auto [key, flag] : {std::pair{"tokenizer.ggml.add_bos_token", &add_bos_},
                           std::pair{"tokenizer.ggml.add_eos_token", &add_eos_}}) {
    const MetaValue* v = m.Find(key);
    if (v == nullptr) continue;
    if (!v->AsInt()) return KeyError(key, "expected a bool");
    *flag = *v->AsInt() != 0;
  }
  return Status::Ok();
}

int32_t Tokenizer::Find(std::string_view text) const {
  const auto it = token_to_id_.find(text);
  return it == token_to_id_.end() ? -1 : it->second;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && add_bos_ && bos_ >= 0) out.push_back(bos_);
  // Fragments: raw text (id < 0) or a user-defined token; llama.cpp splits on the longest tokens first.
  struct Fragment {
    std::string_view text;
    int32_t id;
  };
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({text, -1});
  for (int32_t special : user_defined_) {
    const std::string& piece = tokens_[special];
    std::vector<Fragment> next;
    for (const Fragment& f : fragments) {
      if (f.id >= 0 || f.text.find(piece) == std::string_view::npos) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t hit; (hit = rest.find(piece)) != std::string_view::npos; rest.remove_prefix(hit + piece.size())) {
        if (hit > 0) next.push_back({rest.substr(0, hit), -1});
        next.push_back({{}, special});
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    fragments = std::move(next);
  }
  bool prev_special = true;  // SentencePiece prefixes a space to text at the start or after a special token
  for (const Fragment& f : fragments) {
    if (f.id >= 0) {
      out.push_back(f.id);
      prev_special = true;
    } else if (kind_ == Kind::kSpm) {
      std::string escaped = add_space_prefix_ && prev_special ? " " : "";
      escaped.append(f.text);
      ReplaceAll(&escaped, " ", kSpmSpace);
      EncodeSpm(escaped, &out);
      prev_special = false;
    } else {
      EncodeBpe(f.text, &out);
    }
  }
  if (add_bos && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

std::string Tokenizer::TokenToPiece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  const std::string& text = tokens_[static_cast<size_t>(id)];
  switch (types_[static_cast<size_t>(id)]) {
    case TokenType::kUserDefined:
      return text;
    case TokenType::kNormal: {
      if (kind_ == Kind::kBpe) return unicode::DecodeByteLevel(text);
      std::string piece = text;
      ReplaceAll(&piece, kSpmSpace, " ");
      return piece;
    }
    case TokenType::kByte:
      if (text.size() == 6 && text.starts_with("<0x") && IsHex(text[3]) && IsHex(text[4]))
        return std::string(1, static_cast<char>(HexValue(text[3]) * 16 + HexValue(text[4])));
      return {};
    default:  // control, unknown, unused, undefined: suppressed like llama.cpp's special = false
      return {};
  }
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  bool strip_space = add_space_prefix_;
  for (int32_t id : ids) {
    std::string piece = TokenToPiece(id);
    if (piece.empty()) continue;
    if (strip_space && piece[0] == ' ') piece.erase(0, 1);
    strip_space = false;
    out += piece;
  }
  return out;
}

}  // namespace qforge
