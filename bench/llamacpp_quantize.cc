// Baseline for bench/quantize_vs_llamacpp.sh: llama.cpp's llama_model_quantize (pinned libllama) with a
// given llama_ftype and thread count. Usage: llamacpp_quantize IN.gguf OUT.gguf FTYPE THREADS
#include <cstdio>
#include <cstdlib>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: llamacpp_quantize IN.gguf OUT.gguf FTYPE THREADS\n");
    return 2;
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.ftype = static_cast<llama_ftype>(std::atoi(argv[3]));
  p.nthread = std::atoi(argv[4]);
  return llama_model_quantize(argv[1], argv[2], &p) == 0 ? 0 : 1;
}
