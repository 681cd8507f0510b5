// A naive LlamaForCausalLM forward pass written from Hugging Face transformers' modeling_llama.py, for
// tests only. It reads config.json and the safetensors tensors by their HF names directly: no qforge
// name mapping, no Q/K permutation. Whole sequence at once, no cache, double precision throughout.
//   embed_tokens -> per layer: h += o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))) with
//   n = input_layernorm(h); h += down_proj(silu(gate_proj(m)) * up_proj(m)) with m = post_attention_layernorm(h)
//   -> norm -> lm_head (tied to embed_tokens when tie_word_embeddings).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qforge/core/dtype.h"
#include "qforge/core/status.h"
#include "qforge/formats/safetensors.h"

namespace qforge::hfref {

struct Config {
  int64_t hidden = 0, intermediate = 0, n_layer = 0, n_head = 0, n_kv = 0, head_dim = 0, vocab = 0;
  double rms_eps = 1e-6, rope_theta = 10000.0;
  bool tied = false;
};

struct Layer {
  std::vector<float> input_norm, post_norm, q, k, v, o, gate, up, down;  // row-major [out][in], HF layout
};

struct Model {
  Config cfg;
  std::vector<float> embed, norm, lm_head;  // lm_head empty when tied
  std::vector<Layer> layers;
};

// HF's apply_rotary_pos_emb (rotate_half: pairs (i, i + d/2)), or, to show what skipping the Q/K
// permutation would do, llama.cpp's "llama" RoPE (adjacent pairs (2i, 2i+1)) applied to the same weights.
enum class Rope { kHfRotateHalf, kAdjacentPairs };

inline StatusOr<std::vector<float>> ReadFloats(const SafetensorsCheckpoint& ckpt, const std::string& name,
                                               int64_t expected) {
  const SafetensorsTensor* t = ckpt.Find(name);
  if (!t) return Status::Error("missing tensor", name);
  int64_t n = 1;
  for (int64_t d : t->shape) n *= d;
  if (n != expected) return Status::Error("unexpected element count", name, n);
  std::vector<float> out(n);
  if (t->dtype == DType::kF32 && t->data.size() == size_t(n) * 4) {
    std::memcpy(out.data(), t->data.data(), n * 4);
  } else if (t->dtype == DType::kBF16 && t->data.size() == size_t(n) * 2) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, t->data.data() + 2 * i, 2);
      uint32_t u = uint32_t(b) << 16;
      std::memcpy(&out[i], &u, 4);
    }
  } else {
    return Status::Error("unsupported dtype or size", name);
  }
  return out;
}

inline StatusOr<Model> Load(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  if (!in) return Status::Error("cannot open config.json", dir);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return Status::Error("bad config.json", dir);
  Model m;
  Config& c = m.cfg;
  c.hidden = j.at("hidden_size").get<int64_t>();
  c.intermediate = j.at("intermediate_size").get<int64_t>();
  c.n_layer = j.at("num_hidden_layers").get<int64_t>();
  c.n_head = j.at("num_attention_heads").get<int64_t>();
  c.n_kv = j.value("num_key_value_heads", c.n_head);
  c.head_dim = j.contains("head_dim") && j["head_dim"].is_number() ? j["head_dim"].get<int64_t>() : c.hidden / c.n_head;
  c.vocab = j.at("vocab_size").get<int64_t>();
  c.rms_eps = j.value("rms_norm_eps", 1e-6);
  c.rope_theta = j.value("rope_theta", 10000.0);
  c.tied = j.value("tie_word_embeddings", false);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    return Status::Error("rope_scaling is not implemented in the reference", dir);

  QF_ASSIGN_OR_RETURN(SafetensorsCheckpoint ckpt, ReadSafetensorsCheckpoint(dir));
  const int64_t D = c.hidden, F = c.intermediate, QD = c.n_head * c.head_dim, KD = c.n_kv * c.head_dim;
  QF_ASSIGN_OR_RETURN(m.embed, ReadFloats(ckpt, "model.embed_tokens.weight", c.vocab * D));
  QF_ASSIGN_OR_RETURN(m.norm, ReadFloats(ckpt, "model.norm.weight", D));
  if (!c.tied) {
    QF_ASSIGN_OR_RETURN(m.lm_head, ReadFloats(ckpt, "lm_head.weight", c.vocab * D));
  }
  m.layers.resize(c.n_layer);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer& L = m.layers[l];
    QF_ASSIGN_OR_RETURN(L.input_norm, ReadFloats(ckpt, p + "input_layernorm.weight", D));
    QF_ASSIGN_OR_RETURN(L.post_norm, ReadFloats(ckpt, p + "post_attention_layernorm.weight", D));
    QF_ASSIGN_OR_RETURN(L.q, ReadFloats(ckpt, p + "self_attn.q_proj.weight", QD * D));
    QF_ASSIGN_OR_RETURN(L.k, ReadFloats(ckpt, p + "self_attn.k_proj.weight", KD * D));
    QF_ASSIGN_OR_RETURN(L.v, ReadFloats(ckpt, p + "self_attn.v_proj.weight", KD * D));
    QF_ASSIGN_OR_RETURN(L.o, ReadFloats(ckpt, p + "self_attn.o_proj.weight", D * QD));
    QF_ASSIGN_OR_RETURN(L.gate, ReadFloats(ckpt, p + "mlp.gate_proj.weight", F * D));
    QF_ASSIGN_OR_RETURN(L.up, ReadFloats(ckpt, p + "mlp.up_proj.weight", F * D));
    QF_ASSIGN_OR_RETURN(L.down, ReadFloats(ckpt, p + "mlp.down_proj.weight", D * F));
  }
  return m;
}

// y[T][out] = x[T][in] @ W^T (nn.Linear without bias).
inline std::vector<double> Linear(const std::vector<double>& x, int64_t T, const std::vector<float>& w, int64_t in,
                                  int64_t out) {
  std::vector<double> y(T * out, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < in; ++i) s += x[t * in + i] * double(w[o * in + i]);
      y[t * out + o] = s;
    }
  return y;
}

// LlamaRMSNorm: weight * x / sqrt(mean(x^2) + eps).
inline std::vector<double> RmsNorm(const std::vector<double>& x, int64_t T, int64_t D, const std::vector<float>& w,
                                   double eps) {
  std::vector<double> y(x.size());
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < D; ++i) ss += x[t * D + i] * x[t * D + i];
    const double r = 1.0 / std::sqrt(ss / double(D) + eps);
    for (int64_t i = 0; i < D; ++i) y[t * D + i] = double(w[i]) * (x[t * D + i] * r);
  }
  return y;
}

// In place on x[T][n_heads * hd], position of row t = t.
inline void ApplyRope(std::vector<double>* x, int64_t T, int64_t n_heads, int64_t hd, double theta, Rope style) {
  const int64_t half = hd / 2;
  std::vector<double> h(hd);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t head = 0; head < n_heads; ++head) {
      double* v = x->data() + t * n_heads * hd + head * hd;
      std::copy(v, v + hd, h.begin());
      for (int64_t i = 0; i < half; ++i) {
        // LlamaRotaryEmbedding: inv_freq = 1 / theta^(arange(0, d, 2) / d); emb = cat(freqs, freqs).
        const double inv_freq = 1.0 / std::pow(theta, double(2 * i) / double(hd));
        const double a = double(t) * inv_freq, c = std::cos(a), s = std::sin(a);
        if (style == Rope::kHfRotateHalf) {
          // q * cos + rotate_half(q) * sin, rotate_half(q) = cat(-q[half:], q[:half]).
          v[i] = h[i] * c + (-h[i + half]) * s;
          v[i + half] = h[i + half] * c + h[i] * s;
        } else {
          v[2 * i] = h[2 * i] * c - h[2 * i + 1] * s;
          v[2 * i + 1] = h[2 * i] * s + h[2 * i + 1] * c;
        }
      }
    }
}

// Logits [T][vocab] for tokens at positions 0..T-1.
inline std::vector<double> Forward(const Model& m, const std::vector<int32_t>& tokens, Rope rope) {
  const Config& c = m.cfg;
  const int64_t T = int64_t(tokens.size()), D = c.hidden, F = c.intermediate, hd = c.head_dim;
  const int64_t QD = c.n_head * hd, KD = c.n_kv * hd, group = c.n_head / c.n_kv;
  std::vector<double> h(T * D);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) h[t * D + i] = m.embed[int64_t(tokens[t]) * D + i];
  for (const Layer& L : m.layers) {
    std::vector<double> n = RmsNorm(h, T, D, L.input_norm, c.rms_eps);
    std::vector<double> q = Linear(n, T, L.q, D, QD), k = Linear(n, T, L.k, D, KD), v = Linear(n, T, L.v, D, KD);
    ApplyRope(&q, T, c.n_head, hd, c.rope_theta, rope);
    ApplyRope(&k, T, c.n_kv, hd, c.rope_theta, rope);
    std::vector<double> attn(T * QD, 0.0), p(T);
    for (int64_t head = 0; head < c.n_head; ++head) {
      const int64_t kvh = head / group;  // repeat_kv
      for (int64_t t = 0; t < T; ++t) {
        double mx = -INFINITY;
        for (int64_t u = 0; u <= t; ++u) {  // causal mask: u > t gets -inf, i.e. weight 0
          double s = 0;
          for (int64_t i = 0; i < hd; ++i) s += q[t * QD + head * hd + i] * k[u * KD + kvh * hd + i];
          p[u] = s / std::sqrt(double(hd));
          mx = std::max(mx, p[u]);
        }
        double z = 0;
        for (int64_t u = 0; u <= t; ++u) z += (p[u] = std::exp(p[u] - mx));
        for (int64_t u = 0; u <= t; ++u)
          for (int64_t i = 0; i < hd; ++i) attn[t * QD + head * hd + i] += p[u] / z * v[u * KD + kvh * hd + i];
      }
    }
    std::vector<double> o = Linear(attn, T, L.o, QD, D);
    for (int64_t i = 0; i < T * D; ++i) h[i] += o[i];
    std::vector<double> mm = RmsNorm(h, T, D, L.post_norm, c.rms_eps);
    std::vector<double> g = Linear(mm, T, L.gate, D, F), up = Linear(mm, T, L.up, D, F);
    for (int64_t i = 0; i < T * F; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * up[i];  // silu(gate) * up
    std::vector<double> d = Linear(g, T, L.down, F, D);
    for (int64_t i = 0; i < T * D; ++i) h[i] += d[i];
  }
  std::vector<double> fin = RmsNorm(h, T, D, m.norm, c.rms_eps);
  return Linear(fin, T, c.tied ? m.embed : m.lm_head, D, c.vocab);
}

}  // namespace qforge::hfref
