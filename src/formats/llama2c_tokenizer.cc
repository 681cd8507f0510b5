// llama2.c tokenizer.bin files (written by llama2.c's tokenizer.py export) turned back into the
// SentencePiece vocabulary GGUF "llama" models carry: pieces, scores and token types, as llama.cpp's
// convert-llama2c-to-ggml stores them in stories260K.gguf.
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/byte_reader.h"
#include "qforge/core/mapped_file.h"
#include "qforge/formats/llama2c.h"
#include "utf8_check.h"

namespace qforge {
namespace {

// llama.cpp's llama_token_type values (gguf tokenizer.ggml.token_type).
constexpr int32_t kTokenNormal = 1, kTokenUnknown = 2, kTokenControl = 3, kTokenByte = 6;
// SentencePiece's fixed ids for llama2.c vocabularies (tokenizer.py: unk 0, bos 1, eos 2).
constexpr uint32_t kUnkId = 0, kBosId = 1, kEosId = 2;
constexpr uint32_t kNoToken = 0xFFFFFFFFu;  // -1 as llama.cpp's converter writes unset ids
constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's whitespace marker

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

// "<0xNN>": SentencePiece's byte-fallback pieces.
bool IsBytePiece(std::string_view s) {
  return s.size() == 6 && s.substr(0, 3) == "<0x" && IsHexDigit(s[3]) && IsHexDigit(s[4]) && s[5] == '>';
}

// Undoes tokenizer.py's export: it wrote BOS/EOS as "\n<s>\n" / "\n</s>\n" and replaced U+2581 by ' '.
std::string ToSentencePiece(std::string_view stored) {
  if (stored == "\n<s>\n") return "<s>";
  if (stored == "\n</s>\n") return "</s>";
  std::string out;
  out.reserve(stored.size());
  for (char ch : stored) {
    if (ch == ' ')
      out += kSpmSpace;
    else
      out += ch;
  }
  return out;
}

int32_t TokenType(uint32_t id, const std::string& piece) {
  if (id == kUnkId) return kTokenUnknown;
  if (id == kBosId || id == kEosId) return kTokenControl;
  if (IsBytePiece(piece)) return kTokenByte;
  return kTokenNormal;
}

}  // namespace

Status ParseLlama2cTokenizer(std::span<const uint8_t> bytes, const std::string& name, int32_t expected_vocab,
                             Metadata* metadata) {
  if (expected_vocab <= static_cast<int32_t>(kEosId))
    return Status::Error("llama2.c tokenizer: vocabulary size " + std::to_string(expected_vocab) +
                             " cannot hold <unk>, <s> and </s>",
                         name);
  ByteReader r(bytes, name);
  int32_t max_token_length = 0;
  QF_RETURN_IF_ERROR(r.Read(&max_token_length, "llama2.c tokenizer max_token_length"));
  if (max_token_length < 0)
    return Status::Error("llama2.c tokenizer: max_token_length is negative (" + std::to_string(max_token_length) + ")",
                         name, 0);

  // Every token takes at least 8 bytes, so a count the file cannot hold is rejected before reserving.
  const uint64_t n = static_cast<uint64_t>(expected_vocab);
  if (r.remaining() / 8 < n)
    return Status::Error("llama2.c tokenizer holds fewer tokens than the model's vocab_size " +
                             std::to_string(expected_vocab) + " (" + std::to_string(r.remaining()) +
                             " bytes cannot hold that many entries)",
                         name, static_cast<int64_t>(r.offset()));
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int32_t> types;
  pieces.reserve(n), scores.reserve(n), types.reserve(n);
  for (uint64_t id = 0; id < n; ++id) {
    const std::string what = "token " + std::to_string(id);
    float score = 0;
    int32_t len = 0;
    QF_RETURN_IF_ERROR(r.Read(&score, what + " score").WithContext(
        "llama2.c tokenizer has fewer tokens than vocab_size " + std::to_string(expected_vocab)));
    if (!std::isfinite(score)) return r.Error("llama2.c tokenizer: " + what + " has a non-finite score");
    const uint64_t len_offset = r.offset();
    QF_RETURN_IF_ERROR(r.Read(&len, what + " length"));
    if (len < 0)
      return Status::Error("llama2.c tokenizer: " + what + " has a negative length (" + std::to_string(len) + ")",
                           name, static_cast<int64_t>(len_offset));
    std::span<const uint8_t> text;
    if (static_cast<uint64_t>(len) > r.remaining())
      return Status::Error("llama2.c tokenizer: " + what + " length " + std::to_string(len) + " runs past the end of "
                               "the file (" + std::to_string(r.remaining()) + " bytes left)",
                           name, static_cast<int64_t>(len_offset));
    QF_RETURN_IF_ERROR(r.ReadBytes(static_cast<uint64_t>(len), &text, what + " text"));
    // tokenizer.py writes every piece as UTF-8; anything else is corruption, not a vocabulary.
    const std::string_view stored(reinterpret_cast<const char*>(text.data()), text.size());
    const size_t bad = formats_internal::FindInvalidUtf8(stored);
    if (bad != std::string_view::npos)
      return Status::Error("llama2.c tokenizer: " + what + " text is not valid UTF-8 (byte " + std::to_string(bad) +
                               " of " + std::to_string(text.size()) + ")",
                           name, static_cast<int64_t>(len_offset + 4 + bad));
    std::string piece = ToSentencePiece({reinterpret_cast<const char*>(text.data()), text.size()});
    types.push_back(TokenType(static_cast<uint32_t>(id), piece));
    pieces.push_back(std::move(piece));
    scores.push_back(score);
  }
  if (r.remaining() != 0)
    return r.Error("llama2.c tokenizer has " + std::to_string(r.remaining()) + " bytes after token " +
                   std::to_string(n - 1) + ": it holds more tokens than the model's vocab_size " +
                   std::to_string(expected_vocab));

  metadata->Set("tokenizer.ggml.tokens", MetaValue::StringArray(pieces));
  metadata->Set("tokenizer.ggml.scores", MetaValue::F32Array(scores));
  metadata->Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  metadata->Set("tokenizer.ggml.model", MetaValue::String("llama"));
  metadata->Set("tokenizer.ggml.unknown_token_id", MetaValue::U32(kUnkId));
  metadata->Set("tokenizer.ggml.bos_token_id", MetaValue::U32(kBosId));
  metadata->Set("tokenizer.ggml.eos_token_id", MetaValue::U32(kEosId));
  // Written as "unset" by llama.cpp's converter too; kept so the key set matches its output.
  metadata->Set("tokenizer.ggml.seperator_token_id", MetaValue::U32(kNoToken));
  metadata->Set("tokenizer.ggml.padding_token_id", MetaValue::U32(kNoToken));
  return Status::Ok();
}

Status ReadLlama2cTokenizer(const std::string& path, int32_t expected_vocab, Metadata* metadata) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  return ParseLlama2cTokenizer(file->bytes(), path, expected_vocab, metadata);
}

}  // namespace qforge
