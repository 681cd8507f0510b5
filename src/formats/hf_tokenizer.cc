// Hugging Face tokenizers -> tokenizer.ggml.* metadata, following llama.cpp's convert_hf_to_gguf.py:
// tokenizer.model (SentencePiece) is preferred and becomes model "llama"; otherwise tokenizer.json with a
// byte-level BPE model becomes "gpt2" (tokens by id, merges, a pre-tokenizer name), and a BPE model with
// byte_fallback (how transformers saves Llama 2 tokenizers) becomes "llama" with scores derived from the
// merge ranks. Special ids come from tokenizer_config.json, then config.json, then the SentencePiece model.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "qforge/formats/hf_model.h"
#include "qforge/formats/sentencepiece_model.h"
#include "strict_json.h"

namespace qforge {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

enum TokType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;  // empty for gpt2
  std::vector<int32_t> types;
  std::unordered_map<std::string, int64_t> ids;
  std::optional<int64_t> bos, eos, unk, pad;
  std::optional<bool> add_bos, add_eos;

  void Index() {
    ids.clear();
    for (size_t i = 0; i < tokens.size(); ++i) ids.emplace(tokens[i], static_cast<int64_t>(i));
  }
};

StatusOr<json> ParseJsonText(std::string_view text, const std::string& file) {
  return formats_internal::ParseStrictJson(text, file);  // duplicate tokens or keys are errors
}

std::optional<std::string> ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// tokenizer_config.json names special tokens as "<s>" or {"content": "<s>", ...}.
std::optional<std::string> TokenText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) {
    auto c = v.find("content");
    if (c != v.end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

// Overrides the special ids: config.json ids first, then tokenizer_config.json tokens that resolve in
// the vocabulary (the precedence of gguf-py's SpecialVocab).
void ApplySpecialIds(const HfConfig& config, const json& tok_config, Vocab* v) {
  if (config.bos_id) v->bos = config.bos_id;
  if (config.eos_id) v->eos = config.eos_id;
  if (config.pad_id) v->pad = config.pad_id;
  if (!tok_config.is_object()) return;
  auto resolve = [&](const char* key, std::optional<int64_t>* out) {
    auto it = tok_config.find(key);
    if (it == tok_config.end()) return;
    auto text = TokenText(*it);
    if (!text) return;
    auto id = v->ids.find(*text);
    if (id != v->ids.end()) *out = id->second;
  };
  resolve("bos_token", &v->bos);
  resolve("eos_token", &v->eos);
  resolve("unk_token", &v->unk);
  resolve("pad_token", &v->pad);
  auto flag = [&](const char* key, std::optional<bool>* out) {
    auto it = tok_config.find(key);
    if (it != tok_config.end() && it->is_boolean()) *out = it->get<bool>();
  };
  flag("add_bos_token", &v->add_bos);
  flag("add_eos_token", &v->add_eos);
}

Status Emit(const std::string& model, const std::string& pre, const Vocab& v,
            const std::vector<std::string>& merges, const std::string& file, Metadata* m) {
  const int64_t n = static_cast<int64_t>(v.tokens.size());
  auto put_id = [&](const char* key, const std::optional<int64_t>& id) -> Status {
    if (!id || *id < 0) return Status::Ok();  // -1 means "none" in SentencePiece
    if (*id >= n)
      return Status::Error(std::string(key) + " " + std::to_string(*id) + " is outside the vocabulary of " +
                           std::to_string(n) + " tokens", file);
    m->Set(std::string("tokenizer.ggml.") + key, MetaValue::U32(static_cast<uint32_t>(*id)));
    return Status::Ok();
  };
  m->Set("tokenizer.ggml.model", MetaValue::String(model));
  m->Set("tokenizer.ggml.pre", MetaValue::String(pre));
  m->Set("tokenizer.ggml.tokens", MetaValue::StringArray(v.tokens));
  if (!v.scores.empty()) m->Set("tokenizer.ggml.scores", MetaValue::F32Array(v.scores));
  m->Set("tokenizer.ggml.token_type", MetaValue::I32Array(v.types));
  if (!merges.empty()) m->Set("tokenizer.ggml.merges", MetaValue::StringArray(merges));
  QF_RETURN_IF_ERROR(put_id("bos_token_id", v.bos));
  QF_RETURN_IF_ERROR(put_id("eos_token_id", v.eos));
  QF_RETURN_IF_ERROR(put_id("unknown_token_id", v.unk));
  QF_RETURN_IF_ERROR(put_id("padding_token_id", v.pad));
  if (v.add_bos) m->Set("tokenizer.ggml.add_bos_token", MetaValue::Bool(*v.add_bos));
  if (v.add_eos) m->Set("tokenizer.ggml.add_eos_token", MetaValue::Bool(*v.add_eos));
  return Status::Ok();
}

// Pads the vocabulary up to config.json's vocab_size with "[PADn]" tokens, as llama.cpp does; a tokenizer
// larger than the embedding matrix cannot be right.
Status PadToConfig(const HfConfig& config, const std::string& file, Vocab* v) {
  const int64_t have = static_cast<int64_t>(v->tokens.size());
  if (config.n_vocab > 0 && have > config.n_vocab)
    return Status::Error("tokenizer has " + std::to_string(have) + " tokens but config.json vocab_size is " +
                         std::to_string(config.n_vocab), file);
  for (int64_t i = have; i < config.n_vocab; ++i) {
    v->tokens.push_back("[PAD" + std::to_string(i) + "]");
    v->types.push_back(kUnused);
    if (!v->scores.empty()) v->scores.push_back(-1000.0f);
  }
  return Status::Ok();
}

Status SentencePieceVocab(const std::string& path, const HfConfig& config, const json& tok_config, Metadata* m) {
  QF_ASSIGN_OR_RETURN(SentencePieceModel sp, ReadSentencePieceModel(path));
  Vocab v;
  for (const auto& p : sp.pieces) {
    v.tokens.push_back(p.piece);
    v.scores.push_back(p.score);
    v.types.push_back(static_cast<int32_t>(p.type));
  }
  v.unk = sp.unk_id;
  v.bos = sp.bos_id;
  v.eos = sp.eos_id;
  if (sp.pad_id >= 0) v.pad = sp.pad_id;
  QF_RETURN_IF_ERROR(PadToConfig(config, path, &v));
  v.Index();
  ApplySpecialIds(config, tok_config, &v);
  if (!v.add_bos) v.add_bos = true;  // LlamaTokenizer's default
  return Emit("llama", "default", v, {}, path, m);
}

// Collects every Split regex of a (possibly nested Sequence) pre_tokenizer.
void CollectRegexes(const json& pt, std::vector<std::string>* out, bool* byte_level, int depth = 0) {
  if (!pt.is_object() || depth > 8) return;
  auto type = pt.find("type");
  if (type != pt.end() && *type == "ByteLevel") *byte_level = true;
  auto pat = pt.find("pattern");
  if (pat != pt.end() && pat->is_object()) {
    auto re = pat->find("Regex");
    if (re != pat->end() && re->is_string()) out->push_back(re->get<std::string>());
  }
  auto seq = pt.find("pretokenizers");
  if (seq != pt.end() && seq->is_array())
    for (const auto& p : *seq) CollectRegexes(p, out, byte_level, depth + 1);
}

// llama.cpp identifies pre-tokenizers by hashing the tokenization of a probe text; without running the
// tokenizer we recognise the regex: Llama 3 splits digits in groups of up to three ("\p{N}{1,3}"), Qwen2
// splits single digits ("\p{N}|"), a bare ByteLevel pre-tokenizer is GPT-2's.
std::string GuessPre(const json& tok, const HfConfig& config) {
  std::vector<std::string> regexes;
  bool byte_level = false;
  auto pt = tok.find("pre_tokenizer");
  if (pt != tok.end()) CollectRegexes(*pt, &regexes, &byte_level);
  for (const auto& r : regexes) {
    if (r.find("\\p{N}{1,3}") != std::string::npos) return "llama-bpe";
    if (r.find("|\\p{N}|") != std::string::npos) return "qwen2";
  }
  if (config.gguf_arch == "qwen2") return "qwen2";
  if (regexes.empty() && byte_level) return "gpt2";
  return "default";
}

}  // namespace

Status ParseHfTokenizerJson(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                            const HfConfig& config, const std::string& file, Metadata* m) {
  QF_ASSIGN_OR_RETURN(json tok, ParseJsonText(tokenizer_json, file));
  json tok_config;
  if (!tokenizer_config_json.empty()) {
    QF_ASSIGN_OR_RETURN(tok_config, ParseJsonText(tokenizer_config_json, "tokenizer_config.json"));
  }
  if (!tok.is_object()) return Status::Error("tokenizer.json is not a JSON object", file);
  auto model = tok.find("model");
  if (model == tok.end() || !model->is_object()) return Status::Error("missing \"model\" object", file);
  auto type = model->find("type");
  std::string type_name = type != model->end() && type->is_string() ? type->get<std::string>() : "";
  if (type_name != "BPE") return Status::Error("unsupported tokenizer model type '" + type_name + "' (supported: BPE)", file);
  auto vocab = model->find("vocab");
  if (vocab == model->end() || !vocab->is_object()) return Status::Error("model has no \"vocab\" object", file);
  auto bf = model->find("byte_fallback");
  const bool spm = bf != model->end() && bf->is_boolean() && bf->get<bool>();

  // Tokens by id: the vocabulary, then added_tokens (which may repeat vocabulary entries or extend them).
  struct Entry { std::string text; int64_t id; bool added, special; };
  std::vector<Entry> entries;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it->is_number_integer()) return Status::Error("vocab entry '" + it.key() + "' has no integer id", file);
    entries.push_back({it.key(), it->get<int64_t>(), false, false});
  }
  auto added = tok.find("added_tokens");
  if (added != tok.end() && added->is_array()) {
    for (const auto& a : *added) {
      auto id = a.is_object() ? a.find("id") : a.end();
      auto content = a.is_object() ? a.find("content") : a.end();
      if (!a.is_object() || id == a.end() || !id->is_number_integer() || content == a.end() || !content->is_string())
        return Status::Error("added_tokens entry without integer \"id\" and string \"content\"", file);
      auto sp = a.find("special");
      entries.push_back({content->get<std::string>(), id->get<int64_t>(), true,
                         sp != a.end() && sp->is_boolean() && sp->get<bool>()});
    }
  }
  // Holes are allowed (llama.cpp pads them) but ids far beyond the entries would only waste memory.
  const int64_t limit = std::max<int64_t>(static_cast<int64_t>(entries.size()), config.n_vocab);
  Vocab v;
  std::vector<bool> filled;
  for (const auto& e : entries) {
    if (e.id < 0 || e.id >= limit)
      return Status::Error("token '" + e.text + "' has id " + std::to_string(e.id) + ", outside [0, " +
                           std::to_string(limit) + ")", file);
    if (e.id >= static_cast<int64_t>(v.tokens.size())) {
      v.tokens.resize(e.id + 1);
      v.types.resize(e.id + 1, kUnused);
      filled.resize(e.id + 1, false);
    }
    if (filled[e.id] && !e.added && v.tokens[e.id] != e.text)
      return Status::Error("token id " + std::to_string(e.id) + " is used by both '" + v.tokens[e.id] + "' and '" +
                           e.text + "'", file);
    filled[e.id] = true;
    v.tokens[e.id] = e.text;
    bool is_byte = spm && e.text.size() == 6 && e.text.rfind("<0x", 0) == 0 && e.text[5] == '>';
    v.types[e.id] = e.added ? (e.special ? kControl : kUserDefined) : (is_byte ? kByte : kNormal);
  }
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (!filled[i]) v.tokens[i] = "[PAD" + std::to_string(i) + "]";

  // Merges: "a b" strings, or ["a", "b"] pairs in newer tokenizers.
  std::vector<std::string> merges;
  auto mj = model->find("merges");
  if (mj != model->end() && mj->is_array()) {
    for (const auto& x : *mj) {
      if (x.is_string()) {
        merges.push_back(x.get<std::string>());
      } else if (x.is_array() && x.size() == 2 && x[0].is_string() && x[1].is_string()) {
        merges.push_back(x[0].get<std::string>() + " " + x[1].get<std::string>());
      } else {
        return Status::Error("merge " + std::to_string(merges.size()) + " is neither \"a b\" nor [a, b]", file);
      }
    }
  }
  v.Index();
  if (spm) {
    // SentencePiece-as-BPE: llama.cpp's SPM tokenizer merges the highest-scoring pair, and HF ordered the
    // merges by the SentencePiece score of their result, so score = -rank reproduces that order. Tokens
    // no merge produces (characters, bytes, specials) rank below every merge; their scores never decide.
    v.scores.assign(v.tokens.size(), 0.0f);
    std::vector<bool> scored(v.tokens.size(), false);
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string& mg = merges[r];
      auto sp = mg.find(' ');
      if (sp == std::string::npos) continue;
      auto it = v.ids.find(mg.substr(0, sp) + mg.substr(sp + 1));
      if (it != v.ids.end() && !scored[it->second]) {
        v.scores[it->second] = -static_cast<float>(r);
        scored[it->second] = true;
      }
    }
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (!scored[i] && v.types[i] == kNormal) v.scores[i] = -static_cast<float>(merges.size() + i);
    auto unk = model->find("unk_token");
    if (unk != model->end() && unk->is_string()) {
      auto it = v.ids.find(unk->get<std::string>());
      if (it != v.ids.end()) {
        v.unk = it->second;
        v.types[it->second] = kUnknown;
      }
    }
  }
  QF_RETURN_IF_ERROR(PadToConfig(config, file, &v));
  v.Index();
  ApplySpecialIds(config, tok_config, &v);
  if (spm) {
    if (!v.add_bos) v.add_bos = true;
    return Emit("llama", "default", v, {}, file, m);
  }
  return Emit("gpt2", GuessPre(tok, config), v, merges, file, m);
}

Status ReadHfTokenizer(const std::string& dir, const HfConfig& config, Metadata* m) {
  fs::path d(dir);
  json tok_config;
  std::string tok_config_text;
  if (auto t = ReadText(d / "tokenizer_config.json")) {
    tok_config_text = *t;
    QF_ASSIGN_OR_RETURN(tok_config, ParseJsonText(*t, (d / "tokenizer_config.json").string()));
  }
  std::error_code ec;
  if (fs::is_regular_file(d / "tokenizer.model", ec))
    return SentencePieceVocab((d / "tokenizer.model").string(), config, tok_config, m);
  if (auto t = ReadText(d / "tokenizer.json"))
    return ParseHfTokenizerJson(*t, tok_config_text, config, (d / "tokenizer.json").string(), m);
  return Status::Error("no tokenizer.model or tokenizer.json in the model folder", dir);
}

}  // namespace qforge
