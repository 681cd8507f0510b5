// Test-only: llama.cpp (pinned libllama) evaluating a GGUF on token ids, for differential tests of the
// runtime. One thread always (ggml's workers spin-wait). Header-only; compiled only with QFORGE_HAVE_REFEREE.
#pragma once

#ifdef QFORGE_HAVE_REFEREE
#include <memory>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

namespace qforge::testing {

class LlamaCppModel {
 public:
  explicit LlamaCppModel(const std::string& path, int n_ctx = 512) {
    static bool loaded = [] {
      llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
      ggml_backend_load_all_from_path(QFORGE_GGML_BACKEND_DIR);
      return true;
    }();
    (void)loaded;
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    model_ = llama_model_load_from_file(path.c_str(), mp);
    if (model_ == nullptr) return;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_ubatch = n_ctx;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;  // the plain attention path: its precision is documented above
    ctx_ = llama_init_from_model(model_, cp);
  }
  ~LlamaCppModel() {
    if (ctx_) llama_free(ctx_);
    if (model_) llama_model_free(model_);
  }
  bool ok() const { return ctx_ != nullptr; }
  int n_vocab() const { return llama_vocab_n_tokens(llama_model_get_vocab(model_)); }

  std::vector<int32_t> Tokenize(const std::string& text, bool add_bos) const {
    const llama_vocab* v = llama_model_get_vocab(model_);
    std::vector<llama_token> out(text.size() + 8);
    int n = llama_tokenize(v, text.c_str(), static_cast<int32_t>(text.size()), out.data(),
                           static_cast<int32_t>(out.size()), add_bos, false);
    out.resize(n > 0 ? n : 0);
    return out;
  }

  // Logits for every token of `tokens`, evaluated from position 0 (clears the cache first).
  std::vector<float> AllLogits(const std::vector<int32_t>& tokens) {
    llama_memory_clear(llama_get_memory(ctx_), true);
    llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
    for (size_t i = 0; i < tokens.size(); ++i) {
      batch.token[i] = tokens[i];
      batch.pos[i] = static_cast<llama_pos>(i);
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = 1;
    }
    batch.n_tokens = static_cast<int32_t>(tokens.size());
    std::vector<float> out;
    if (llama_decode(ctx_, batch) == 0) {
      const int nv = n_vocab();
      out.resize(tokens.size() * nv);
      for (size_t i = 0; i < tokens.size(); ++i) {
        const float* l = llama_get_logits_ith(ctx_, static_cast<int32_t>(i));
        std::copy(l, l + nv, out.begin() + i * nv);
      }
    }
    llama_batch_free(batch);
    return out;
  }

  // Greedy continuation: n new tokens after `prompt` (token ids).
  std::vector<int32_t> Greedy(const std::vector<int32_t>& prompt, int n) {
    std::vector<int32_t> toks = prompt;
    for (int i = 0; i < n; ++i) {
      std::vector<float> l = AllLogits(toks);
      if (l.empty()) break;
      const float* last = l.data() + (toks.size() - 1) * n_vocab();
      toks.push_back(static_cast<int32_t>(std::max_element(last, last + n_vocab()) - last));
    }
    return std::vector<int32_t>(toks.begin() + prompt.size(), toks.end());
  }

 private:
  llama_model* model_ = nullptr;
  llama_context* ctx_ = nullptr;
};

}  // namespace qforge::testing
#endif
