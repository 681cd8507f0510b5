// llama2.c legacy (version 0) checkpoints as a SourceModel: header validation, the exact byte layout
// (run.c memory_map_weights), GGUF tensor names and metadata as llama.cpp's convert-llama2c-to-ggml
// writes them (checked against ggml-org's stories260K.gguf), and the tokenizer lookup beside the file.
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>
#include <vector>

#include "qforge/core/byte_reader.h"
#include "qforge/core/checked.h"
#include "qforge/core/mapped_file.h"
#include "qforge/formats/llama2c.h"

namespace qforge {
namespace {

// llama2.c's newer export() versions start with this magic ("ak42" read as LE uint32); we only read
// the legacy layout, but such a file deserves a clearer message than "dim is huge".
constexpr uint32_t kLlama2cVersionedMagic = 0x616b3432;

// One stored tensor: its offset in the file and its shape in ggml order (ne[0] contiguous).
struct Region {
  uint64_t offset = 0;
  std::vector<uint64_t> ne;
};

// Walks the file layout of run.c's memory_map_weights with checked arithmetic. Each Take() reserves
// `count` consecutive tensors of shape `ne` and returns the offset of the first.
class LayoutWalker {
 public:
  explicit LayoutWalker(uint64_t start) : pos_(start) {}
  bool Take(uint64_t count, const std::vector<uint64_t>& ne, uint64_t* first) {
    uint64_t floats = count;
    for (uint64_t d : ne) {
      auto m = CheckedMul(floats, d);
      if (!m) return false;
      floats = *m;
    }
    auto bytes = CheckedMul(floats, sizeof(float));
    auto end = bytes ? CheckedAdd(pos_, *bytes) : std::nullopt;
    if (!end) return false;
    if (first != nullptr) *first = pos_;
    pos_ = *end;
    return true;
  }
  uint64_t pos() const { return pos_; }

 private:
  uint64_t pos_;
};

// Offsets of every weight group in file order, plus the total size. Per-layer groups are stored
// layer-major inside each group (all layers' wq, then all layers' wk, ...).
struct Layout {
  uint64_t token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, wcls, total;
};

StatusOr<Layout> ComputeLayout(const Llama2cConfig& c) {
  const uint64_t dim = c.dim, hidden = c.hidden_dim, layers = c.n_layers, vocab = c.vocab_size;
  const uint64_t kv_dim = static_cast<uint64_t>(c.kv_dim()), half_head = static_cast<uint64_t>(c.head_size() / 2);
  LayoutWalker w(kLlama2cHeaderBytes);
  Layout l{};
  uint64_t rope = 0;
  bool ok = w.Take(1, {dim, vocab}, &l.token_embedding) && w.Take(layers, {dim}, &l.rms_att) &&
            w.Take(layers, {dim, dim}, &l.wq) && w.Take(layers, {dim, kv_dim}, &l.wk) &&
            w.Take(layers, {dim, kv_dim}, &l.wv) && w.Take(layers, {dim, dim}, &l.wo) &&
            w.Take(layers, {dim}, &l.rms_ffn) && w.Take(layers, {dim, hidden}, &l.w1) &&
            w.Take(layers, {hidden, dim}, &l.w2) && w.Take(layers, {dim, hidden}, &l.w3) &&
            w.Take(1, {dim}, &l.rms_final) && w.Take(2, {half_head, static_cast<uint64_t>(c.seq_len)}, &rope);
  if (ok) {
    l.wcls = l.token_embedding;  // shared: the classifier is the embedding table
    if (!c.shared_classifier) ok = w.Take(1, {dim, vocab}, &l.wcls);
  }
  if (!ok) return Status::Error("llama2.c header: the model size implied by the config overflows 64 bits");
  l.total = w.pos();
  return l;
}

Status HeaderError(const std::string& name, int64_t field_index, const std::string& reason) {
  return Status::Error("llama2.c header: " + reason, name, field_index * 4);
}

// The GGUF tensor of `ne` starting at `offset` in bytes; raw and read_f32 both view the mapping.
SourceTensor MakeTensor(std::string tensor_name, std::vector<uint64_t> ne, std::span<const uint8_t> bytes,
                        uint64_t offset) {
  SourceTensor t;
  t.name = std::move(tensor_name);
  t.ne = std::move(ne);
  t.type = GgmlType::F32;
  t.raw = bytes.subspan(static_cast<size_t>(offset), static_cast<size_t>(t.numel() * sizeof(float)));
  std::span<const uint8_t> raw = t.raw;
  t.read_f32 = [raw](float* dst) {
    std::memcpy(dst, raw.data(), raw.size());  // the file is little-endian fp32, as is every supported host
    return Status::Ok();
  };
  return t;
}

std::string ModelNameFromPath(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  return stem.empty() ? "llama" : stem;
}

}  // namespace

StatusOr<Llama2cConfig> ParseLlama2cHeader(std::span<const uint8_t> bytes, const std::string& name) {
  ByteReader r(bytes, name);
  int32_t f[7];
  static const char* kFields[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i) QF_RETURN_IF_ERROR(r.Read(&f[i], std::string("llama2.c header field ") + kFields[i]));
  if (static_cast<uint32_t>(f[0]) == kLlama2cVersionedMagic)
    return HeaderError(name, 0, "this is a versioned llama2.c export (magic \"ak42\"); only the legacy (version 0) "
                                "layout is supported: re-export with export.py --version 0");
  Llama2cConfig c;
  c.dim = f[0], c.hidden_dim = f[1], c.n_layers = f[2], c.n_heads = f[3], c.n_kv_heads = f[4];
  c.seq_len = f[6];
  c.shared_classifier = f[5] > 0;
  // INT32_MIN has no positive counterpart; treat it like the other impossible sizes.
  c.vocab_size = f[5] == std::numeric_limits<int32_t>::min() ? 0 : (f[5] < 0 ? -f[5] : f[5]);
  const int32_t fields[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len};
  for (int i = 0; i < 7; ++i)
    if (fields[i] <= 0)
      return HeaderError(name, i, std::string(kFields[i]) + " must be positive, got " + std::to_string(f[i]));
  if (c.dim % c.n_heads != 0)
    return HeaderError(name, 3, "n_heads (" + std::to_string(c.n_heads) + ") does not divide dim (" +
                                    std::to_string(c.dim) + ")");
  if (c.n_kv_heads > c.n_heads)
    return HeaderError(name, 4, "n_kv_heads (" + std::to_string(c.n_kv_heads) + ") exceeds n_heads (" +
                                    std::to_string(c.n_heads) + ")");
  if (c.n_heads % c.n_kv_heads != 0)
    return HeaderError(name, 4, "n_kv_heads (" + std::to_string(c.n_kv_heads) + ") does not divide n_heads (" +
                                    std::to_string(c.n_heads) + ")");
  if (c.head_size() % 2 != 0)  // RoPE rotates pairs within a head
    return HeaderError(name, 3, "head size dim/n_heads = " + std::to_string(c.head_size()) + " is odd; RoPE needs pairs");
  return c;
}

StatusOr<uint64_t> Llama2cExpectedBytes(const Llama2cConfig& config) {
  QF_ASSIGN_OR_RETURN(Layout l, ComputeLayout(config));
  return l.total;
}

StatusOr<SourceModel> ParseLlama2cCheckpoint(std::span<const uint8_t> bytes, const std::string& name) {
  QF_ASSIGN_OR_RETURN(Llama2cConfig c, ParseLlama2cHeader(bytes, name));
  auto layout_or = ComputeLayout(c);
  if (!layout_or.ok()) return layout_or.status().WithFile(name);
  const Layout l = *layout_or;
  // Extra trailing bytes are tolerated as run.c does (it never looks past the classifier).
  if (bytes.size() < l.total)
    return Status::Error("llama2.c checkpoint too short for its header's config: expected " + std::to_string(l.total) +
                             " bytes, file has " + std::to_string(bytes.size()),
                         name, static_cast<int64_t>(bytes.size()));

  const uint64_t dim = c.dim, hidden = c.hidden_dim, vocab = c.vocab_size, kv_dim = c.kv_dim();
  SourceModel m;
  m.path = name;
  m.format = "llama2c";
  // Order of llama.cpp's convert-llama2c-to-ggml (and hence stories260K.gguf).
  m.tensors.push_back(MakeTensor("token_embd.weight", {dim, vocab}, bytes, l.token_embedding));
  m.tensors.push_back(MakeTensor("output_norm.weight", {dim}, bytes, l.rms_final));
  // Emitted even when shared: llama.cpp's reference file stores its own copy named output.weight.
  m.tensors.push_back(MakeTensor("output.weight", {dim, vocab}, bytes, l.wcls));
  for (uint64_t i = 0; i < static_cast<uint64_t>(c.n_layers); ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const uint64_t sq = dim * dim * 4, skv = kv_dim * dim * 4, sff = hidden * dim * 4, sn = dim * 4;
    m.tensors.push_back(MakeTensor(p + "attn_q.weight", {dim, dim}, bytes, l.wq + i * sq));
    m.tensors.push_back(MakeTensor(p + "attn_k.weight", {dim, kv_dim}, bytes, l.wk + i * skv));
    m.tensors.push_back(MakeTensor(p + "attn_v.weight", {dim, kv_dim}, bytes, l.wv + i * skv));
    m.tensors.push_back(MakeTensor(p + "attn_output.weight", {dim, dim}, bytes, l.wo + i * sq));
    m.tensors.push_back(MakeTensor(p + "attn_norm.weight", {dim}, bytes, l.rms_att + i * sn));
    m.tensors.push_back(MakeTensor(p + "ffn_gate.weight", {dim, hidden}, bytes, l.w1 + i * sff));
    m.tensors.push_back(MakeTensor(p + "ffn_down.weight", {hidden, dim}, bytes, l.w2 + i * sff));
    m.tensors.push_back(MakeTensor(p + "ffn_up.weight", {dim, hidden}, bytes, l.w3 + i * sff));
    m.tensors.push_back(MakeTensor(p + "ffn_norm.weight", {dim}, bytes, l.rms_ffn + i * sn));
  }

  Metadata& md = m.metadata;
  md.Set("general.architecture", MetaValue::String("llama"));
  md.Set("general.name", MetaValue::String(ModelNameFromPath(name)));
  // The converter writes its default 2048; the model was trained (and its RoPE tables built) at seq_len,
  // and attention beyond it is untrained, so seq_len is the honest context length.
  md.Set("llama.context_length", MetaValue::U32(static_cast<uint32_t>(c.seq_len)));
  md.Set("llama.embedding_length", MetaValue::U32(static_cast<uint32_t>(c.dim)));
  md.Set("llama.feed_forward_length", MetaValue::U32(static_cast<uint32_t>(c.hidden_dim)));
  md.Set("llama.attention.head_count", MetaValue::U32(static_cast<uint32_t>(c.n_heads)));
  md.Set("llama.attention.head_count_kv", MetaValue::U32(static_cast<uint32_t>(c.n_kv_heads)));
  md.Set("llama.block_count", MetaValue::U32(static_cast<uint32_t>(c.n_layers)));
  md.Set("llama.rope.dimension_count", MetaValue::U32(static_cast<uint32_t>(c.head_size())));
  md.Set("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5f));  // llama2.c model.py default
  md.Set("general.file_type", MetaValue::U32(0));  // ALL_F32; writers overwrite it after quantizing
  return m;
}

namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Merges checkpoint and tokenizer keys in the order stories260K.gguf lists them, so a converted file's
// metadata reads like llama.cpp's (tokenizer arrays, general.*, token ids, llama.*).
Metadata MergeInReferenceOrder(const Metadata& model, const Metadata& tok) {
  Metadata out;
  auto copy = [&out](const Metadata& from, const char* key) {
    if (const MetaValue* v = from.Find(key)) out.Set(key, *v);
  };
  for (const char* k : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                        "tokenizer.ggml.model"})
    copy(tok, k);
  copy(model, "general.architecture");
  copy(model, "general.name");
  for (const auto& [k, v] : tok.entries())
    if (!out.Find(k)) out.Set(k, v);
  for (const auto& [k, v] : model.entries())
    if (!out.Find(k)) out.Set(k, v);
  return out;
}

}  // namespace

StatusOr<SourceModel> OpenLlama2cSource(const std::string& checkpoint, const std::string& tokenizer) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(checkpoint));
  QF_ASSIGN_OR_RETURN(SourceModel m, ParseLlama2cCheckpoint(file->bytes(), checkpoint));
  m.keep_alive.push_back(file);
  const int32_t vocab = static_cast<int32_t>(m.FindTensor("token_embd.weight")->ne[1]);

  std::string tok_path = tokenizer;
  if (tok_path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(checkpoint).parent_path();
    const std::string candidates[2] = {(dir / "tokenizer.bin").string(),
                                       (dir / ("tok" + std::to_string(vocab) + ".bin")).string()};
    for (const auto& c : candidates)
      if (IsRegularFile(c)) {
        tok_path = c;
        break;
      }
    if (tok_path.empty())
      return Status::Error("no llama2.c tokenizer found beside the checkpoint (looked for " + candidates[0] + " and " +
                               candidates[1] + "); pass the tokenizer.bin path explicitly",
                           checkpoint);
  }
  Metadata tok;
  QF_RETURN_IF_ERROR(ReadLlama2cTokenizer(tok_path, vocab, &tok));
  m.metadata = MergeInReferenceOrder(m.metadata, tok);
  return m;
}

}  // namespace qforge
