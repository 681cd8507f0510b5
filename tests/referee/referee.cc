// qforge_referee: a small llama.cpp client that is qforge's independent referee in end-to-end tests.
// It links only libllama/libggml from the pinned npm package (never libqforge) and answers two questions
// about a GGUF file, as JSON on stdout: what greedy decoding produces, and the mean NLL on a text.
//
//   qforge_referee generate MODEL.gguf --prompt TEXT [-n N] [--ctx N]
//   qforge_referee nll MODEL.gguf --text FILE [--split-blank-lines] [--max-pieces N] [--ctx N]
//
// NLL protocol (../shared/models/README.md, "Reference values"): split on "\n\n", strip, drop empty pieces;
// per piece tokens = [BOS] + encode(piece), truncated to n_ctx; sum -log p(tok[i+1] | tok[0..i]) in float64.
// llama.cpp always runs with one thread: ggml's workers spin-wait, and on a shared 2-core machine more
// threads than idle cores slow it down by orders of magnitude.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

namespace {

[[noreturn]] void Fail(const std::string& msg) {
  std::fprintf(stderr, "qforge_referee: %s\n", msg.c_str());
  std::exit(1);
}

void QuietLog(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

struct Options {
  std::string command, model, prompt, text_file;
  int n_predict = 60;
  int n_ctx = 0;  // 0: min(512, the model's training context)
  int max_pieces = -1;
  bool split_blank_lines = false;
};

void Usage() {
  std::fputs(
      "usage: qforge_referee generate MODEL.gguf --prompt TEXT [-n N] [--ctx N]\n"
      "       qforge_referee nll MODEL.gguf --text FILE [--split-blank-lines] [--max-pieces N] [--ctx N]\n",
      stderr);
  std::exit(2);
}

int ParseInt(const char* s, const char* flag) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 1000000) Fail(std::string("bad value for ") + flag + ": " + s);
  return static_cast<int>(v);
}

Options ParseArgs(int argc, char** argv) {
  if (argc < 3) Usage();
  Options o;
  o.command = argv[1];
  o.model = argv[2];
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) Fail("missing value after " + a);
      return argv[++i];
    };
    if (a == "--prompt" || a == "-p") o.prompt = next();
    else if (a == "-n") o.n_predict = ParseInt(next(), "-n");
    else if (a == "--ctx" || a == "-c") o.n_ctx = ParseInt(next(), "--ctx");
    else if (a == "--text") o.text_file = next();
    else if (a == "--split-blank-lines") o.split_blank_lines = true;
    else if (a == "--max-pieces") o.max_pieces = ParseInt(next(), "--max-pieces");
    else Fail("unknown argument " + a);
  }
  if (o.command != "generate" && o.command != "nll") Usage();
  if (o.command == "nll" && o.text_file.empty()) Fail("nll needs --text FILE");
  return o;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Tokenizer front end. With byte-fallback tokens llama_tokenize handles every input. Without them
// (BabyLlama's 105 single characters) llama.cpp aborts on an unrepresentable character, so we encode
// ourselves as SentencePiece does for a merge-free character vocabulary: a "▁" dummy prefix, spaces
// become "▁", each UTF-8 character becomes its token or <unk>.
class Tokenizer {
 public:
  explicit Tokenizer(const llama_vocab* vocab) : vocab_(vocab) {
    const int n = llama_vocab_n_tokens(vocab);
    for (int id = 0; id < n; ++id) {
      const char* t = llama_vocab_get_text(vocab, id);
      if (t) piece_to_id_.emplace(t, id);
    }
    has_byte_tokens_ = piece_to_id_.count("<0x00>") > 0;
    // llama.h has no accessor for the unknown token: take the token marked UNKNOWN, else "<unk>", else 0.
    if (piece_to_id_.count("<unk>")) unk_ = piece_to_id_.at("<unk>");
    for (int id = 0; id < n; ++id) {
      if (llama_vocab_get_attr(vocab, id) & LLAMA_TOKEN_ATTR_UNKNOWN) {
        unk_ = id;
        break;
      }
    }
  }

  bool has_byte_tokens() const { return has_byte_tokens_; }

  // Tokens of `text` without BOS.
  std::vector<llama_token> Encode(const std::string& text) const {
    if (text.empty()) return {};
    if (has_byte_tokens_) return LlamaTokenize(text);
    return CharTokenize(text);
  }

 private:
  std::vector<llama_token> LlamaTokenize(const std::string& text) const {
    std::vector<llama_token> toks(text.size() + 8);
    int n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), toks.data(),
                           static_cast<int32_t>(toks.size()), /*add_special=*/false, /*parse_special=*/false);
    if (n < 0) {
      toks.resize(-n);
      n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), toks.data(),
                         static_cast<int32_t>(toks.size()), false, false);
    }
    if (n < 0) Fail("llama_tokenize failed");
    toks.resize(n);
    return toks;
  }

  static size_t Utf8Len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c >> 5) == 0x6) return 2;
    if ((c >> 4) == 0xE) return 3;
    if ((c >> 3) == 0x1E) return 4;
    return 1;  // stray continuation byte: one unknown "character"
  }

  std::vector<llama_token> CharTokenize(const std::string& text) const {
    static const std::string kSpace = "\xE2\x96\x81";  // U+2581
    std::vector<llama_token> toks;
    auto emit = [&](const std::string& ch) {
      auto it = piece_to_id_.find(ch == " " ? kSpace : ch);
      bool normal = it != piece_to_id_.end() &&
                    llama_vocab_get_attr(vocab_, it->second) & LLAMA_TOKEN_ATTR_NORMAL;
      toks.push_back(normal ? it->second : unk_);
    };
    emit(" ");  // dummy prefix
    for (size_t i = 0; i < text.size();) {
      size_t len = std::min(Utf8Len(static_cast<unsigned char>(text[i])), text.size() - i);
      emit(text.substr(i, len));
      i += len;
    }
    return toks;
  }

  const llama_vocab* vocab_;
  std::unordered_map<std::string, llama_token> piece_to_id_;
  bool has_byte_tokens_ = false;
  llama_token unk_ = 0;
};

struct Session {
  llama_model* model = nullptr;
  llama_context* ctx = nullptr;
  const llama_vocab* vocab = nullptr;
  int n_ctx = 0;
  int n_vocab = 0;

  Session(const std::string& path, int requested_ctx) {
    llama_log_set(QuietLog, nullptr);
    ggml_backend_load_all_from_path(QFORGE_GGML_BACKEND_DIR);
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    model = llama_model_load_from_file(path.c_str(), mp);
    if (!model) Fail("llama.cpp could not load " + path);
    vocab = llama_model_get_vocab(model);
    n_vocab = llama_vocab_n_tokens(vocab);
    n_ctx = requested_ctx > 0 ? requested_ctx : std::min(512, std::max(1, llama_model_n_ctx_train(model)));

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(n_ctx);
    cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(n_ctx);
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = 1;  // see the file comment
    // F32 KV cache and no flash attention: the referee should not add fp16 rounding of its own.
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf = true;
    ctx = llama_init_from_model(model, cp);
    if (!ctx) Fail("llama.cpp could not create a context for " + path);
  }
  ~Session() {
    llama_free(ctx);
    llama_model_free(model);
  }

  // Decodes `toks` at positions [pos0, pos0 + n); logits for all positions if all_logits, else the last.
  void Decode(const std::vector<llama_token>& toks, int pos0, bool all_logits) {
    llama_batch batch = llama_batch_init(static_cast<int32_t>(toks.size()), 0, 1);
    for (size_t i = 0; i < toks.size(); ++i) {
      batch.token[i] = toks[i];
      batch.pos[i] = pos0 + static_cast<llama_pos>(i);
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = all_logits || i + 1 == toks.size();
    }
    batch.n_tokens = static_cast<int32_t>(toks.size());
    int rc = llama_decode(ctx, batch);
    llama_batch_free(batch);
    if (rc != 0) Fail("llama_decode failed with code " + std::to_string(rc));
  }
};

std::vector<llama_token> WithBos(const Session& s, const Tokenizer& tok, const std::string& text) {
  std::vector<llama_token> toks;
  if (llama_vocab_get_add_bos(s.vocab) && llama_vocab_bos(s.vocab) >= 0) toks.push_back(llama_vocab_bos(s.vocab));
  auto body = tok.Encode(text);
  toks.insert(toks.end(), body.begin(), body.end());
  return toks;
}

std::string Piece(const llama_vocab* vocab, llama_token t) {
  char buf[256];
  int n = llama_token_to_piece(vocab, t, buf, sizeof buf, 0, /*special=*/false);
  return n > 0 ? std::string(buf, n) : std::string();
}

int Generate(const Options& o) {
  Session s(o.model, o.n_ctx);
  Tokenizer tok(s.vocab);
  std::vector<llama_token> toks = WithBos(s, tok, o.prompt);
  if (static_cast<int>(toks.size()) + o.n_predict > s.n_ctx) Fail("prompt + -n exceeds the context");
  std::string text = o.prompt;
  std::vector<llama_token> all = toks;
  s.Decode(toks, 0, false);
  for (int i = 0; i < o.n_predict; ++i) {
    const float* logits = llama_get_logits_ith(s.ctx, -1);
    llama_token best = static_cast<llama_token>(std::max_element(logits, logits + s.n_vocab) - logits);
    if (llama_vocab_is_eog(s.vocab, best)) break;
    all.push_back(best);
    text += Piece(s.vocab, best);
    s.Decode({best}, static_cast<int>(all.size()) - 1, false);
  }
  std::string ids;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i) ids += ',';
    ids += std::to_string(all[i]);
  }
  std::printf("{\"text\": %s, \"tokens\": [%s]}\n", JsonString(text).c_str(), ids.c_str());
  return 0;
}

std::string Strip(const std::string& s) {
  const char* ws = " \t\n\r\v\f";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::vector<std::string> Pieces(const std::string& text, bool split) {
  std::vector<std::string> out;
  if (!split) {
    if (!Strip(text).empty()) out.push_back(Strip(text));
    return out;
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find("\n\n", start);
    if (end == std::string::npos) end = text.size();
    std::string p = Strip(text.substr(start, end - start));
    if (!p.empty()) out.push_back(std::move(p));
    start = end + 2;
  }
  return out;
}

int Nll(const Options& o) {
  auto t0 = std::chrono::steady_clock::now();
  std::ifstream in(o.text_file, std::ios::binary);
  if (!in) Fail("cannot read " + o.text_file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> pieces = Pieces(ss.str(), o.split_blank_lines);
  if (o.max_pieces >= 0 && static_cast<int>(pieces.size()) > o.max_pieces) pieces.resize(o.max_pieces);

  Session s(o.model, o.n_ctx);
  Tokenizer tok(s.vocab);
  double sum = 0.0;
  long long count = 0;
  for (const std::string& piece : pieces) {
    std::vector<llama_token> toks = WithBos(s, tok, piece);
    if (static_cast<int>(toks.size()) > s.n_ctx) toks.resize(s.n_ctx);
    if (toks.size() < 2) continue;
    llama_memory_clear(llama_get_memory(s.ctx), true);
    s.Decode(toks, 0, true);
    for (size_t i = 0; i + 1 < toks.size(); ++i) {
      const float* logits = llama_get_logits_ith(s.ctx, static_cast<int32_t>(i));
      if (!logits) Fail("no logits for position " + std::to_string(i));
      double mx = *std::max_element(logits, logits + s.n_vocab);
      double z = 0.0;
      for (int v = 0; v < s.n_vocab; ++v) z += std::exp(static_cast<double>(logits[v]) - mx);
      sum += mx + std::log(z) - static_cast<double>(logits[toks[i + 1]]);
      ++count;
    }
  }
  if (count == 0) Fail("no tokens to predict in " + o.text_file);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"nll\": %.10f, \"ppl\": %.6f, \"tokens\": %lld, \"pieces\": %zu, \"n_ctx\": %d, \"seconds\": %.2f}\n",
              sum / count, std::exp(sum / count), count, pieces.size(), s.n_ctx, secs);
  return std::isfinite(sum) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  return o.command == "generate" ? Generate(o) : Nll(o);
}
