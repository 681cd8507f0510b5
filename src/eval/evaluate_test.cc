// The evaluation on stories260K: perplexity against llama.cpp's protocol computed from libllama's logits,
// the top-k truncation bound on a real model pair, saved-reference round trip, per-document protocol.
#include "qforge/eval/evaluate.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "../runtime/llama_reference.h"
#include "qforge/algo/policy.h"
#include "qforge/formats/gguf.h"
#include "qforge/pipeline/quantize.h"
#include "qforge/runtime/llama_context.h"

namespace qforge::eval {
namespace {

namespace fs = std::filesystem;

const std::string kStories = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";
const std::string kText = std::string(QFORGE_SHARED_DIR) + "/data/tinystories/tinystories_valid_head.txt";

std::string ReadPrefix(const std::string& path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (s.size() > n) s.resize(n);
  return s;
}

class StoriesEval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("qforge_eval_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    auto src = OpenGgufSource(kStories);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    for (const std::string type : {"Q8_0", "Q4_0"}) {
      auto policy = MakePolicy(type, ModelFactsFromSource(*src));
      ASSERT_TRUE(policy.ok());
      auto r = QuantizeToGguf(*src, *policy, Path(type), {});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Path(const std::string& type) {
    return type == "F32" ? kStories : (*dir_ / (type + ".gguf")).string();
  }
  static fs::path* dir_;
};
fs::path* StoriesEval::dir_ = nullptr;

StatusOr<EvalPlan> WindowPlan(const LlamaModel& m, int n_ctx, int chunks) {
  QF_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromMetadata(m.gguf().metadata));
  return BuildPlan(ReadPrefix(kText, 16000), tok, ProtocolOptions{Protocol::kWindows, n_ctx, chunks});
}

// Full-reference vs top-k-reference KLD on real logits (F32 reference, Q4_0 evaluated).
TEST_F(StoriesEval, TopKTruncationWithinBoundOnQ4_0) {
  auto ref = LlamaModel::Load(Path("F32"));
  auto q = LlamaModel::Load(Path("Q4_0"));
  ASSERT_TRUE(ref.ok() && q.ok());
  auto plan = WindowPlan(*ref, 128, 4);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const int nv = ref->hparams().n_vocab;
  LlamaContext rc(*ref, 128, 1), qc(*q, 128, 1);
  std::vector<float> rl, ql;
  std::vector<uint8_t> mark(nv, 0);
  double full = 0, k64 = 0, kall = 0, bound = 0;
  uint64_t n = 0;
  for (const auto& s : plan->seqs) {
    rc.Reset();
    qc.Reset();
    ASSERT_TRUE(rc.Eval(s.tokens, true, &rl).ok());
    ASSERT_TRUE(qc.Eval(s.tokens, true, &ql).ok());
    for (size_t i = s.score_from; i + 1 < s.tokens.size(); ++i, ++n) {
      std::span<const float> p(rl.data() + i * nv, nv), qq(ql.data() + i * nv, nv);
      const int32_t t = s.tokens[i + 1];
      TopKRef a, b;
      MakeTopK(p, 64, t, &a);
      MakeTopK(p, nv, t, &b);
      const double f = ComparePosition(p, qq, t).kld;
      PositionStats tk = ComparePosition(a.view(), qq, t, &mark);
      const double all = ComparePosition(b.view(), qq, t, &mark).kld;
      EXPECT_LE(tk.kld, f + 1e-12);
      EXPECT_LE(f - tk.kld, tk.kld_bound + 1e-12);
      EXPECT_NEAR(all, f, 1e-9);
      full += f;
      k64 += tk.kld;
      kall += all;
      bound += tk.kld_bound;
    }
  }
  full /= n, k64 /= n, kall /= n, bound /= n;
  std::printf("stories260K Q4_0, %llu positions: mean KLD full %.6g, top-64 %.6g (diff %.3g, bound %.3g), "
              "top-512 %.12g\n", static_cast<unsigned long long>(n), full, k64, full - k64, bound, kall);
  EXPECT_LE(full - k64, bound);
  EXPECT_NEAR(kall, full, 1e-9);
}

// Evaluate() with a reference model vs with the saved top-k of the same reference.
TEST_F(StoriesEval, SavedReferenceMatchesModelReference) {
  auto ref = LlamaModel::Load(Path("F32"));
  auto q = LlamaModel::Load(Path("Q8_0"));
  ASSERT_TRUE(ref.ok() && q.ok());
  auto plan = WindowPlan(*ref, 64, 4);
  ASSERT_TRUE(plan.ok());
  const std::string saved = (*dir_ / "ref.qfref").string();
  EvalOptions save;
  save.threads = 1;
  save.save_ref_path = saved;
  save.save_ref_k = 32;
  auto base = Evaluate(*ref, *plan, {}, save);
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  auto file = RefLogitsFile::Open(saved);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EvalOptions opt;
  opt.threads = 1;
  auto with_model = Evaluate(*q, *plan, EvalReference{&*ref, nullptr, ""}, opt);
  auto with_file = Evaluate(*q, *plan, EvalReference{nullptr, &*file, saved}, opt);
  ASSERT_TRUE(with_model.ok() && with_file.ok());
  EXPECT_NEAR(with_model->ppl_ref.value, base->ppl.value, 1e-9);
  EXPECT_NEAR(with_file->ppl_ref.value, base->ppl.value, 1e-5);  // target logit stored as float
  EXPECT_EQ(with_file->same_top.value, with_model->same_top.value);
  EXPECT_NEAR(with_file->rms_dp.value, with_model->rms_dp.value, 1e-6);
  EXPECT_LE(with_file->kld.value, with_model->kld.value + 1e-12);
  EXPECT_LE(with_model->kld.value - with_file->kld.value, with_file->kld_trunc_bound);
  EXPECT_GT(with_model->kld.value, 0);
  // A different plan is refused.
  auto other = WindowPlan(*ref, 64, 3);
  ASSERT_TRUE(other.ok());
  auto bad = Evaluate(*q, *other, EvalReference{nullptr, &*file, saved}, opt);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().reason().find("sequences"), std::string::npos) << bad.status().ToString();
}

TEST_F(StoriesEval, PerDocumentFirst200Pieces) {
  auto m = LlamaModel::Load(Path("F32"));
  ASSERT_TRUE(m.ok());
  auto tok = Tokenizer::FromMetadata(m->gguf().metadata);
  ASSERT_TRUE(tok.ok());
  std::string text = ReadPrefix(kText, 1 << 20);
  auto plan = BuildPlan(text, *tok, ProtocolOptions{Protocol::kDocuments, 512, 200});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->seqs.size(), 200u);
  EvalOptions opt;
  opt.threads = 1;  // tiny model: one thread is faster than synchronizing two per token
  auto r = Evaluate(*m, *plan, {}, opt);
  ASSERT_TRUE(r.ok());
  std::printf("stories260K F32 per-document protocol, first 200 pieces: %llu predicted tokens, mean NLL %.4f, "
              "PPL %.4f\n", static_cast<unsigned long long>(r->count), r->nll.value, r->ppl.value);
  EXPECT_GT(r->nll.value, 1.2);
  EXPECT_LT(r->nll.value, 2.3);
}

#ifdef QFORGE_HAVE_REFEREE
// llama.cpp's perplexity protocol with llama.cpp's own logits (libllama) vs ours, per type.
TEST_F(StoriesEval, PerplexityAgreesWithLlamaCpp) {
  const int n_ctx = 128, chunks = 8;
  for (const std::string type : {"F32", "Q8_0", "Q4_0"}) {
    auto m = LlamaModel::Load(Path(type));
    ASSERT_TRUE(m.ok());
    auto plan = WindowPlan(*m, n_ctx, chunks);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    ASSERT_EQ(plan->seqs.size(), static_cast<size_t>(chunks));
    EvalOptions opt;
    opt.threads = 1;
    auto ours = Evaluate(*m, *plan, {}, opt);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();

    testing::LlamaCppModel lc(Path(type), n_ctx);
    ASSERT_TRUE(lc.ok());
    const std::vector<int32_t> toks = lc.Tokenize(ReadPrefix(kText, 16000), true);
    const int nv = lc.n_vocab();
    double nll = 0;
    uint64_t count = 0;
    for (int c = 0; c < chunks; ++c) {
      std::vector<int32_t> w(toks.begin() + c * n_ctx, toks.begin() + (c + 1) * n_ctx);
      w[0] = 1;  // llama_vocab_bos: BOS replaces the window's first token
      ASSERT_EQ(w, plan->seqs[c].tokens) << "tokenization differs in window " << c;
      std::vector<float> logits = lc.AllLogits(w);
      ASSERT_EQ(logits.size(), static_cast<size_t>(n_ctx) * nv);
      for (int i = n_ctx / 2; i < n_ctx - 1; ++i, ++count) {
        const float* l = logits.data() + static_cast<size_t>(i) * nv;
        double mx = l[0], s = 0;
        for (int j = 1; j < nv; ++j) mx = std::max<double>(mx, l[j]);
        for (int j = 0; j < nv; ++j) s += std::exp(l[j] - mx);
        nll += mx + std::log(s) - l[w[i + 1]];
      }
    }
    const double ppl_lc = std::exp(nll / count);
    std::printf("stories260K %-4s windows %d x %d: PPL qforge %.4f +/- %.4f, llama.cpp %.4f (rel diff %.2e)\n",
                type.c_str(), chunks, n_ctx, ours->ppl.value, ours->ppl.unc, ppl_lc,
                ours->ppl.value / ppl_lc - 1);
    EXPECT_EQ(ours->count, count);
    EXPECT_NEAR(ours->ppl.value / ppl_lc, 1.0, 0.005) << type;
  }
}
#endif

}  // namespace
}  // namespace qforge::eval
