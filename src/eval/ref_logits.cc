// Writer and validating reader of saved reference logits (format in ref_logits.h).
#include "qforge/eval/ref_logits.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "qforge/core/checked.h"

namespace qforge::eval {
namespace {

static_assert(std::endian::native == std::endian::little, "the reference file format is little-endian");

uint64_t Fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

std::optional<uint64_t> RecordBytes(uint64_t k) {
  auto kb = CheckedMul(k, 8);
  if (!kb) return std::nullopt;
  return CheckedAdd(*kb, 8 + 8 + 4);
}

}  // namespace

StatusOr<RefLogitsWriter> RefLogitsWriter::Create(const std::string& path, const EvalPlan& plan, int n_vocab, int k) {
  if (n_vocab <= 0) return Status::Error("reference logits: vocabulary size must be positive", path);
  if (k < 1 || k > n_vocab) {
    return Status::Error("reference logits: k must be in [1, n_vocab = " + std::to_string(n_vocab) + "], got " +
                         std::to_string(k), path);
  }
  QF_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path));
  RefLogitsWriter w(std::move(file), k, plan.positions());
  const uint32_t hdr32[4] = {kRefVersion, static_cast<uint32_t>(n_vocab), static_cast<uint32_t>(k),
                             static_cast<uint32_t>(plan.seqs.size())};
  const uint64_t hdr64[2] = {plan.tokens(), plan.positions()};
  QF_RETURN_IF_ERROR(w.Put(kRefMagic, 8));
  QF_RETURN_IF_ERROR(w.Put(hdr32, sizeof(hdr32)));
  QF_RETURN_IF_ERROR(w.Put(hdr64, sizeof(hdr64)));
  for (const auto& s : plan.seqs) {
    const uint32_t v[2] = {static_cast<uint32_t>(s.tokens.size()), static_cast<uint32_t>(s.score_from)};
    QF_RETURN_IF_ERROR(w.Put(v, sizeof(v)));
  }
  for (const auto& s : plan.seqs) QF_RETURN_IF_ERROR(w.Put(s.tokens.data(), s.tokens.size() * sizeof(int32_t)));
  return w;
}

Status RefLogitsWriter::Put(const void* p, size_t n) {
  hash_ = Fnv1a(hash_, static_cast<const uint8_t*>(p), n);
  return file_.Write(p, n);
}

Status RefLogitsWriter::Append(const TopKRef& ref) {
  if (ref.ids.size() != static_cast<size_t>(k_) || ref.logits.size() != static_cast<size_t>(k_))
    return Status::Error("reference logits: record with " + std::to_string(ref.ids.size()) + " ids, expected " +
                         std::to_string(k_), file_.target_path());
  if (written_ >= expected_) return Status::Error("reference logits: more records than planned", file_.target_path());
  QF_RETURN_IF_ERROR(Put(&ref.lse, 8));
  QF_RETURN_IF_ERROR(Put(&ref.tail, 8));
  QF_RETURN_IF_ERROR(Put(&ref.target_logit, 4));
  QF_RETURN_IF_ERROR(Put(ref.ids.data(), 4 * ref.ids.size()));
  QF_RETURN_IF_ERROR(Put(ref.logits.data(), 4 * ref.logits.size()));
  ++written_;
  return Status::Ok();
}

Status RefLogitsWriter::Finish() {
  if (written_ != expected_)
    return Status::Error("reference logits: " + std::to_string(written_) + " records written, " +
                         std::to_string(expected_) + " planned", file_.target_path());
  const uint64_t h = hash_;
  QF_RETURN_IF_ERROR(file_.Write(&h, 8));
  return file_.Commit();
}

StatusOr<RefLogitsFile> RefLogitsFile::Open(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> map, MappedFile::Open(path));
  const uint8_t* d = map->data();
  const uint64_t size = map->size();
  auto err = [&](const std::string& why, int64_t off) { return Status::Error("reference logits: " + why, path, off); };
  if (size < kRefHeaderBytes + 8) return err("file too small (" + std::to_string(size) + " bytes) for the header", 0);
  if (std::memcmp(d, kRefMagic, 8) != 0) return err("bad magic: not a qforge reference-logits file", 0);
  const uint32_t version = Load<uint32_t>(d + 8);
  if (version != kRefVersion) return err("unsupported version " + std::to_string(version), 8);
  const uint32_t n_vocab = Load<uint32_t>(d + 12), k = Load<uint32_t>(d + 16), n_seq = Load<uint32_t>(d + 20);
  const uint64_t n_tokens = Load<uint64_t>(d + 24), n_positions = Load<uint64_t>(d + 32);
  if (n_vocab == 0 || n_vocab > (1u << 24)) return err("implausible n_vocab " + std::to_string(n_vocab), 12);
  if (k == 0 || k > n_vocab) return err("k = " + std::to_string(k) + " outside [1, n_vocab]", 16);
  // Sizes: checked before any allocation.
  auto plan_bytes = CheckedMul(n_seq, 8);
  auto tok_bytes = CheckedMul(n_tokens, 4);
  auto rec_bytes = RecordBytes(k);
  std::optional<uint64_t> all_rec = rec_bytes ? CheckedMul(n_positions, *rec_bytes) : std::nullopt;
  std::optional<uint64_t> total = kRefHeaderBytes + 8;
  for (auto part : {plan_bytes, tok_bytes, all_rec}) total = (total && part) ? CheckedAdd(*total, *part) : std::nullopt;
  if (!total || *total != size) {
    return err("file size " + std::to_string(size) + " does not match its header (n_seq " + std::to_string(n_seq) +
               ", n_tokens " + std::to_string(n_tokens) + ", n_positions " + std::to_string(n_positions) + ", k " +
               std::to_string(k) + "): truncated or corrupt", 0);
  }
  const uint64_t stored_hash = Load<uint64_t>(d + size - 8);
  if (Fnv1a(0xcbf29ce484222325ull, d, size - 8) != stored_hash) return err("checksum mismatch: corrupt file", size - 8);

  RefLogitsFile f;
  f.map_ = map;
  f.n_vocab_ = static_cast<int>(n_vocab);
  f.k_ = static_cast<int>(k);
  f.n_positions_ = n_positions;
  f.record_bytes_ = *rec_bytes;
  uint64_t off = kRefHeaderBytes, tok_off = kRefHeaderBytes + *plan_bytes, sum_len = 0, sum_scored = 0;
  f.plan_.seqs.resize(n_seq);
  for (uint32_t s = 0; s < n_seq; ++s, off += 8) {
    const uint32_t len = Load<uint32_t>(d + off), from = Load<uint32_t>(d + off + 4);
    if (len < 2 || uint64_t{from} + 1 >= len || len > n_tokens - sum_len)
      return err("sequence " + std::to_string(s) + ": length " + std::to_string(len) + ", score_from " +
                 std::to_string(from) + " inconsistent", static_cast<int64_t>(off));
    auto& seq = f.plan_.seqs[s];
    seq.score_from = static_cast<int32_t>(from);
    seq.tokens.resize(len);
    std::memcpy(seq.tokens.data(), d + tok_off + 4 * sum_len, 4ull * len);
    for (uint32_t i = 0; i < len; ++i)
      if (seq.tokens[i] < 0 || static_cast<uint32_t>(seq.tokens[i]) >= n_vocab)
        return err("token id " + std::to_string(seq.tokens[i]) + " out of range",
                   static_cast<int64_t>(tok_off + 4 * (sum_len + i)));
    sum_len += len;
    sum_scored += len - 1 - from;
  }
  if (sum_len != n_tokens) return err("sequence lengths sum to " + std::to_string(sum_len) + ", header says " +
                                      std::to_string(n_tokens), 24);
  if (sum_scored != n_positions) return err("plan scores " + std::to_string(sum_scored) + " positions, header says " +
                                            std::to_string(n_positions), 32);
  f.records_offset_ = tok_off + *tok_bytes;
  std::vector<uint8_t> seen(n_vocab, 0);
  TopKRef r;
  for (uint64_t i = 0; i < n_positions; ++i) {
    TopKView v = f.Record(i, &r);
    const int64_t at = static_cast<int64_t>(f.records_offset_ + i * f.record_bytes_);
    const std::string rec = "record " + std::to_string(i) + ": ";
    if (!std::isfinite(v.lse) || !std::isfinite(v.target_logit) || !(v.tail >= 0 && v.tail <= 1))
      return err(rec + "non-finite log-sum-exp/target logit or tail mass outside [0, 1]", at);
    if (v.target_logit > v.lse + 1e-3) return err(rec + "target logit above the log-sum-exp", at);
    for (uint32_t j = 0; j < k; ++j) {
      const int32_t id = v.ids[j];
      if (id < 0 || static_cast<uint32_t>(id) >= n_vocab || seen[id])
        return err(rec + "token id " + std::to_string(id) + " out of range or repeated", at);
      seen[id] = 1;
      if (!std::isfinite(v.logits[j]) || v.logits[j] > v.lse + 1e-3 || (j > 0 && v.logits[j] > v.logits[j - 1]))
        return err(rec + "logits not finite, above the log-sum-exp, or not sorted descending", at);
    }
    for (uint32_t j = 0; j < k; ++j) seen[v.ids[j]] = 0;
  }
  return f;
}

TopKView RefLogitsFile::Record(uint64_t i, TopKRef* scratch) const {
  const uint8_t* p = map_->data() + records_offset_ + i * record_bytes_;
  scratch->lse = Load<double>(p);
  scratch->tail = Load<double>(p + 8);
  scratch->target_logit = Load<float>(p + 16);
  scratch->ids.resize(static_cast<size_t>(k_));
  scratch->logits.resize(static_cast<size_t>(k_));
  std::memcpy(scratch->ids.data(), p + 20, 4ull * k_);
  std::memcpy(scratch->logits.data(), p + 20 + 4ull * k_, 4ull * k_);
  return scratch->view();
}

Status CheckRefMatches(const RefLogitsFile& ref, const EvalPlan& plan, int n_vocab, const std::string& path) {
  if (ref.n_vocab() != n_vocab)
    return Status::Error("reference logits were saved for a vocabulary of " + std::to_string(ref.n_vocab()) +
                         " tokens, this model has " + std::to_string(n_vocab), path);
  const EvalPlan& saved = ref.plan();
  if (saved.seqs.size() != plan.seqs.size())
    return Status::Error("reference logits cover " + std::to_string(saved.seqs.size()) + " sequences, this run has " +
                         std::to_string(plan.seqs.size()) + " (same --text, -c, --chunks and protocol?)", path);
  for (size_t s = 0; s < plan.seqs.size(); ++s) {
    if (saved.seqs[s].score_from != plan.seqs[s].score_from || saved.seqs[s].tokens != plan.seqs[s].tokens)
      return Status::Error("reference logits: sequence " + std::to_string(s) +
                           " differs from this run's tokens (different text, tokenizer, -c or protocol)", path);
  }
  return Status::Ok();
}

}  // namespace qforge::eval
