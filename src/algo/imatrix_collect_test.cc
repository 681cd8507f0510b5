// The collector on stories260K: layer 0's attention input is computed here independently (RMSNorm of the
// token embedding), the sharing of inputs (q/k/v, gate/up) and the token counts are checked for every layer.
#include "qforge/algo/imatrix_collect.h"

#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

namespace qforge {
namespace {

const std::string kModel = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";

TEST(ImatrixCollect, MatchesAnIndependentLayerZeroAndSharesGroupInputs) {
  auto model = LlamaModel::Load(kModel);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::vector<std::vector<int32_t>> chunks = {{1, 400, 17, 256, 3, 99, 12, 45}, {1, 7, 7, 300, 511, 2, 80, 64}};
  size_t progress_calls = 0;
  ImatrixCollectOptions opt;
  opt.dataset = "tokens-by-hand";
  opt.progress = [&](size_t done, size_t total) {
    ++progress_calls;
    EXPECT_EQ(total, 2u);
    EXPECT_EQ(done, progress_calls);
  };
  auto im = CollectImatrix(*model, chunks, opt);
  ASSERT_TRUE(im.ok()) << im.status().ToString();
  EXPECT_EQ(progress_calls, 2u);
  EXPECT_EQ(im->chunk_count, 2);
  EXPECT_EQ(im->chunk_size, 8);
  EXPECT_EQ(im->datasets, std::vector<std::string>{"tokens-by-hand"});

  const auto& hp = model->hparams();
  // 7 matrices per layer; no token_embd (a lookup) and no output.weight (llama.cpp's default).
  EXPECT_EQ(im->entries.size(), static_cast<size_t>(7 * hp.n_layer));
  EXPECT_EQ(im->entries.count("token_embd.weight"), 0u);
  EXPECT_EQ(im->entries.count("output.weight"), 0u);
  for (int l = 0; l < hp.n_layer; ++l) {
    auto at = [&](const char* what) -> const ImatrixEntry& {
      return im->entries.at("blk." + std::to_string(l) + "." + what + ".weight");
    };
    EXPECT_EQ(at("attn_q").sums, at("attn_k").sums);
    EXPECT_EQ(at("attn_q").sums, at("attn_v").sums);
    EXPECT_EQ(at("ffn_gate").sums, at("ffn_up").sums);
    EXPECT_EQ(at("attn_q").sums.size(), static_cast<size_t>(hp.n_embd));
    EXPECT_EQ(at("attn_output").sums.size(), static_cast<size_t>(hp.n_head * hp.head_dim));
    EXPECT_EQ(at("ffn_down").sums.size(), static_cast<size_t>(hp.n_ff));
    for (const char* w : {"attn_q", "attn_output", "ffn_gate", "ffn_down"}) {
      EXPECT_EQ(at(w).counts, std::vector<int64_t>{16}) << w;  // every token of both chunks
      float total = 0;
      for (float s : at(w).sums) total += s;
      EXPECT_GT(total, 0.0f) << "layer " << l << " " << w;
    }
  }

  // Layer 0's q/k/v input is RMSNorm(embedding) * attn_norm: recompute its Σx² from the file's F32 embedding.
  const WeightRef& emb = model->token_embd();
  ASSERT_EQ(emb.type, GgmlType::F32);
  const auto& norm = model->layers()[0].attn_norm;
  std::vector<double> want(static_cast<size_t>(hp.n_embd), 0.0);
  for (const auto& chunk : chunks) {
    for (int32_t tok : chunk) {
      std::vector<float> x(static_cast<size_t>(hp.n_embd));
      std::memcpy(x.data(), emb.data + static_cast<size_t>(tok) * emb.row_bytes, x.size() * sizeof(float));
      double ss = 0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double scale = 1.0 / std::sqrt(ss / hp.n_embd + hp.rms_eps);
      for (size_t j = 0; j < x.size(); ++j) {
        const double xn = x[j] * scale * norm[j];
        want[j] += xn * xn;
      }
    }
  }
  const auto& got = im->entries.at("blk.0.attn_q.weight").sums;
  for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(got[j], want[j], 1e-4 * want[j] + 1e-6) << "column " << j;
}

TEST(ImatrixCollect, RefusesRaggedChunks) {
  auto model = LlamaModel::Load(kModel);
  ASSERT_TRUE(model.ok());
  EXPECT_FALSE(CollectImatrix(*model, {}, {}).ok());
  EXPECT_FALSE(CollectImatrix(*model, {{1, 2, 3}, {1, 2}}, {}).ok());
}

}  // namespace
}  // namespace qforge
