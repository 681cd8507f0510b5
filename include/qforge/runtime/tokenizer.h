// Text <-> token ids for GGUF vocabularies: SentencePiece ("llama", score-driven merges with byte
// fallback) and byte-level BPE ("gpt2", ranked merges after a regex-like pre-tokenizer). Encode
// reproduces llama.cpp's llama_tokenize(add_special, parse_special = false) id for id.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/metadata.h"

namespace qforge {

// GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

class Tokenizer {
 public:
  enum class Kind { kSpm, kBpe };
  // Which pre-tokenizer regex the BPE vocabulary uses (tokenizer.ggml.pre). kGpt2 also stands in for
  // "default" and a missing key (llama.cpp's multi-regex default split is not reproduced).
  enum class Pre { kNone, kGpt2, kLlama3, kQwen2 };

  // Reads tokenizer.ggml.* keys. The metadata is untrusted: every array length, id and merge is checked
  // and reported as an error naming the key.
  static StatusOr<Tokenizer> FromMetadata(const Metadata& m);

  // llama_tokenize(text, add_special = add_bos, parse_special = false): BOS (and EOS when the vocab asks
  // for it) only when add_bos is true and the vocabulary's add_bos()/add_eos flags are set. User-defined
  // tokens in the text are matched literally first, as llama.cpp does. Invalid UTF-8 never fails: for
  // SentencePiece each invalid byte is one character (its byte token or unk); for BPE it becomes U+FFFD
  // like llama.cpp.
  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const;

  // llama_token_to_piece(id, lstrip = 0, special = false): normal tokens with U+2581 -> ' ' (SPM) or
  // GPT-2 bytes decoded (BPE), byte tokens -> the raw byte, user-defined -> their text, control, unknown
  // and unused tokens -> "". Out-of-range ids -> "".
  std::string TokenToPiece(int32_t id) const;

  // Concatenated pieces. Unlike llama_detokenize, which keeps the space SentencePiece prefixed when a
  // BOS precedes it, the prefix space of the first non-control token is removed (as SentencePiece's
  // decoder does), and BPE output is not "cleaned" (" ," stays " ,"): so Decode(Encode(t)) == t for
  // every valid UTF-8 t whose characters the vocabulary can represent.
  std::string Decode(const std::vector<int32_t>& ids) const;

  int32_t bos() const { return bos_; }  // -1 when the vocabulary has none
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }
  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  bool add_bos() const { return add_bos_; }  // tokenizer.ggml.add_bos_token (default true for llama)
  bool add_eos() const { return add_eos_; }
  Kind kind() const { return kind_; }
  Pre pre() const { return pre_; }
  const std::string& TokenText(int32_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  TokenType GetTokenType(int32_t id) const { return types_.at(static_cast<size_t>(id)); }

 private:
  // Transparent hashing: lookups by string_view without building a std::string per probe.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

  Tokenizer() = default;
  Status BuildVocab(const Metadata& m);
  Status BuildMerges(const Metadata& m);
  Status ReadSpecialIds(const Metadata& m);
  int32_t Find(std::string_view text) const;  // -1 when text is no token

  // Raw-text runs between user-defined tokens go through one of these (tokenizer_spm.cc / _bpe.cc).
  void EncodeSpm(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeBpe(std::string_view text, std::vector<int32_t>* out) const;
  int32_t BpeRank(std::string_view left, std::string_view right, std::string* scratch) const;

  Kind kind_ = Kind::kSpm;
  Pre pre_ = Pre::kNone;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  TokenMap token_to_id_;
  TokenMap bpe_ranks_;                   // "left right" -> merge rank
  std::vector<int32_t> user_defined_;    // matched before tokenization, longest first
  std::array<int32_t, 256> byte_token_;  // SPM byte fallback per byte value, -1 if missing
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  bool ignore_merges_ = false;  // Llama 3: a pre-token that is a whole token is taken as it is
};

}  // namespace qforge
