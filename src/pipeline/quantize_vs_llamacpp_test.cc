// End to end: files written by `qforge quantize` are loaded and run by llama.cpp (the pinned libllama), and
// their quality is at least that of llama.cpp's own llama_model_quantize output for the same type:
//  - real models (stories260K, BabyLlama): mean NLL on held-out TinyStories paragraphs, evaluated by llama.cpp;
//  - a synthetic model with rows that are multiples of 256 (so every k-quant is used without fallbacks):
//    mean KL divergence from the F16 model, evaluated by llama.cpp.
// Tolerance: our encoders have lower reconstruction error than ggml's on every type (quant tests), but lower
// weight error does not guarantee lower NLL on a finite text: we allow ours to be worse by at most 10% of
// llama.cpp's own quantization loss (NLL_q - NLL_f32), plus 2e-3 nats for evaluation noise.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../runtime/llama_reference.h"
#include "qforge/algo/policy.h"
#include "qforge/formats/gguf.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/quantize.h"
#include "qforge/runtime/tokenizer.h"
#include "synthetic_model.h"

#ifdef QFORGE_HAVE_REFEREE
namespace qforge {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Paragraphs(size_t max_pieces) {
  std::ifstream in(std::string(QFORGE_SHARED_DIR) + "/data/tinystories/tinystories_valid_head.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size() && out.size() < max_pieces) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    std::string piece = text.substr(pos, end - pos);
    const size_t b = piece.find_first_not_of(" \t\n"), e = piece.find_last_not_of(" \t\n");
    if (b != std::string::npos) out.push_back(piece.substr(b, e - b + 1));
    pos = end + 2;
  }
  return out;
}

double LogSoftmaxAt(const float* logits, int n, int target) {
  double max = logits[0];
  for (int i = 1; i < n; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(logits[i] - max);
  return logits[target] - max - std::log(sum);
}

// Mean NLL per predicted token, evaluated by llama.cpp, on token ids from our tokenizer (which equals
// llama.cpp's on these vocabularies and maps characters BabyLlama cannot represent to <unk>).
double LlamaCppNll(const std::string& gguf, const std::vector<std::vector<int32_t>>& docs) {
  testing::LlamaCppModel m(gguf, 512);
  EXPECT_TRUE(m.ok()) << "llama.cpp could not load " << gguf;
  if (!m.ok()) return NAN;
  double nll = 0;
  size_t n = 0;
  for (const auto& d : docs) {
    std::vector<float> l = m.AllLogits(d);
    for (size_t i = 0; i + 1 < d.size(); ++i) {
      nll -= LogSoftmaxAt(l.data() + i * m.n_vocab(), m.n_vocab(), d[i + 1]);
      ++n;
    }
  }
  return nll / static_cast<double>(n);
}

std::vector<std::vector<int32_t>> TokenizeDocs(const std::string& gguf, size_t pieces, size_t max_len) {
  auto g = ReadGguf(gguf);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  auto tok = Tokenizer::FromMetadata(g->metadata);
  EXPECT_TRUE(tok.ok()) << tok.status().ToString();
  std::vector<std::vector<int32_t>> docs;
  for (const auto& p : Paragraphs(pieces)) {
    auto ids = tok->Encode(p, true);
    if (ids.size() > max_len) ids.resize(max_len);
    if (ids.size() >= 2) docs.push_back(std::move(ids));
  }
  return docs;
}

std::string LlamaCppQuantize(const std::string& in, const fs::path& out, uint32_t ftype) {
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.nthread = 1;
  p.ftype = static_cast<llama_ftype>(ftype);
  EXPECT_EQ(llama_model_quantize(in.c_str(), out.c_str(), &p), 0u);
  return out.string();
}

void CompareOnRealModel(const std::string& source, const std::string& name, size_t max_len) {
  fs::path dir = fs::temp_directory_path() / ("qforge_qvl_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto src = OpenModelSource(source);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  auto f32 = MakePolicy("F32", ModelFactsFromSource(*src));
  const std::string f32_path = (dir / "f32.gguf").string();
  ASSERT_TRUE(QuantizeToGguf(*src, *f32, f32_path, {}).ok());
  const auto docs = TokenizeDocs(f32_path, 60, max_len);
  const double base = LlamaCppNll(f32_path, docs);
  std::printf("%s F32: NLL %.5f (llama.cpp, %zu paragraphs)\n", name.c_str(), base, docs.size());
  for (const std::string type : {"Q8_0", "Q5_1", "Q4_0", "Q4_1", "IQ4_NL", "Q4_K_M", "Q2_K"}) {
    auto policy = MakePolicy(type, ModelFactsFromSource(*src));
    ASSERT_TRUE(policy.ok());
    const std::string ours = (dir / ("ours-" + type + ".gguf")).string();
    QuantizeOptions opt;
    opt.threads = 2;
    auto r = QuantizeToGguf(*src, *policy, ours, opt);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const std::string theirs = LlamaCppQuantize(f32_path, dir / ("llamacpp-" + type + ".gguf"), policy->llama_ftype);
    const double nll_ours = LlamaCppNll(ours, docs), nll_theirs = LlamaCppNll(theirs, docs);
    std::printf("%s %-7s: NLL ours %.5f  llama.cpp's %.5f  (loss ours %+.5f, theirs %+.5f)\n", name.c_str(),
                type.c_str(), nll_ours, nll_theirs, nll_ours - base, nll_theirs - base);
    EXPECT_LE(nll_ours, nll_theirs + 0.1 * std::fabs(nll_theirs - base) + 2e-3) << name << " " << type;
  }
  fs::remove_all(dir);
}

TEST(QuantizeVsLlamaCpp, Stories260KNll) {
  CompareOnRealModel(std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.bin", "stories260K", 512);
}

TEST(QuantizeVsLlamaCpp, BabyLlamaNll) {
  CompareOnRealModel(std::string(QFORGE_SHARED_DIR) + "/models/babyllama-tok105/babyllama105.bin", "babyllama", 256);
}

// Mean KLD(F16 || quantized) over the positions of `docs`, both evaluated by llama.cpp.
double LlamaCppKld(const std::string& ref_path, const std::string& q_path, const std::vector<std::vector<int32_t>>& docs) {
  testing::LlamaCppModel ref(ref_path, 512), q(q_path, 512);
  EXPECT_TRUE(ref.ok() && q.ok());
  const int nv = ref.n_vocab();
  double kld = 0;
  size_t n = 0;
  for (const auto& d : docs) {
    std::vector<float> lr = ref.AllLogits(d), lq = q.AllLogits(d);
    for (size_t i = 0; i < d.size(); ++i) {
      const float* a = lr.data() + i * nv;
      const float* b = lq.data() + i * nv;
      double k = 0;
      for (int t = 0; t < nv; ++t) {
        const double lpa = LogSoftmaxAt(a, nv, t);
        k += std::exp(lpa) * (lpa - LogSoftmaxAt(b, nv, t));
      }
      kld += k;
      ++n;
    }
  }
  return kld / static_cast<double>(n);
}

TEST(QuantizeVsLlamaCpp, SyntheticModelEveryKQuant) {
  fs::path dir = fs::temp_directory_path() / ("qforge_qvl_syn_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  testing::SyntheticSpec spec;
  spec.n_layer = 4;
  spec.n_ff = 512;
  spec.n_vocab = 512;
  SourceModel src = testing::MakeSyntheticLlama(spec);
  auto f16 = MakePolicy("F16", ModelFactsFromSource(src));
  const std::string f16_path = (dir / "f16.gguf").string();
  ASSERT_TRUE(QuantizeToGguf(src, *f16, f16_path, {}).ok());
  auto docs = TokenizeDocs(f16_path, 4, 64);
  for (const std::string type : {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS"}) {
    auto policy = MakePolicy(type, ModelFactsFromSource(src));
    ASSERT_TRUE(policy.ok());
    const std::string ours = (dir / ("ours-" + type + ".gguf")).string();
    auto r = QuantizeToGguf(src, *policy, ours, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->fallbacks, 0u) << type;
    const std::string theirs = LlamaCppQuantize(f16_path, dir / ("llamacpp-" + type + ".gguf"), policy->llama_ftype);
    const double k_ours = LlamaCppKld(f16_path, ours, docs), k_theirs = LlamaCppKld(f16_path, theirs, docs);
    std::printf("synthetic %-7s: mean KLD vs F16, ours %.6f  llama.cpp's %.6f\n", type.c_str(), k_ours, k_theirs);
    EXPECT_LE(k_ours, k_theirs * 1.10 + 1e-6) << type;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qforge
#endif  // QFORGE_HAVE_REFEREE
