// Saved reference logits: round trip, and a table of corrupt files that must each fail with their own message.
#include "qforge/eval/ref_logits.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <random>

namespace qforge::eval {
namespace {

namespace fs = std::filesystem;

constexpr int kVocab = 40, kK = 5;

EvalPlan SmallPlan() {
  EvalPlan plan;
  plan.seqs.push_back({{1, 7, 8, 9, 10, 11}, 2});  // 3 positions
  plan.seqs.push_back({{1, 30, 31}, 0});           // 2 positions
  return plan;
}

std::vector<std::vector<float>> RandomRows(size_t n) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0, 2);
  std::vector<std::vector<float>> rows(n, std::vector<float>(kVocab));
  for (auto& r : rows)
    for (auto& x : r) x = d(rng);
  return rows;
}

std::string WriteSmall(const std::string& name, std::vector<TopKRef>* refs = nullptr) {
  const std::string path = (fs::temp_directory_path() / name).string();
  EvalPlan plan = SmallPlan();
  auto rows = RandomRows(plan.positions());
  auto w = RefLogitsWriter::Create(path, plan, kVocab, kK);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  size_t r = 0;
  for (const auto& s : plan.seqs)
    for (size_t i = s.score_from; i + 1 < s.tokens.size(); ++i, ++r) {
      TopKRef t;
      MakeTopK(rows[r], kK, s.tokens[i + 1], &t);
      EXPECT_TRUE(w->Append(t).ok());
      if (refs) refs->push_back(t);
    }
  EXPECT_TRUE(w->Finish().ok());
  return path;
}

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

// Writes bytes back with a recomputed checksum, so the checks behind the checksum are reached.
void WriteWithChecksum(const std::string& path, std::vector<uint8_t> b) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i + 8 < b.size(); ++i) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  std::memcpy(b.data() + b.size() - 8, &h, 8);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST(RefLogits, RoundTrip) {
  std::vector<TopKRef> refs;
  const std::string path = WriteSmall("qforge_ref_roundtrip.qfref", &refs);
  auto f = RefLogitsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->n_vocab(), kVocab);
  EXPECT_EQ(f->k(), kK);
  EXPECT_EQ(f->n_positions(), 5u);
  EXPECT_TRUE(f->plan() == SmallPlan());
  TopKRef scratch;
  for (uint64_t i = 0; i < 5; ++i) {
    TopKView v = f->Record(i, &scratch);
    EXPECT_EQ(v.lse, refs[i].lse);
    EXPECT_EQ(v.tail, refs[i].tail);
    EXPECT_EQ(v.target_logit, refs[i].target_logit);
    EXPECT_TRUE(std::equal(v.ids.begin(), v.ids.end(), refs[i].ids.begin()));
    EXPECT_TRUE(std::equal(v.logits.begin(), v.logits.end(), refs[i].logits.begin()));
  }
  EXPECT_TRUE(CheckRefMatches(*f, SmallPlan(), kVocab, path).ok());
  EvalPlan other = SmallPlan();
  other.seqs[1].tokens[2] = 32;
  Status st = CheckRefMatches(*f, other, kVocab, path);
  EXPECT_NE(st.reason().find("sequence 1 differs"), std::string::npos) << st.ToString();
  EXPECT_NE(CheckRefMatches(*f, SmallPlan(), 41, path).reason().find("vocabulary of 40"), std::string::npos);
  fs::remove(path);
}

TEST(RefLogits, WriterRejectsBadInput) {
  const std::string path = (fs::temp_directory_path() / "qforge_ref_bad.qfref").string();
  EXPECT_FALSE(RefLogitsWriter::Create(path, SmallPlan(), kVocab, 0).ok());
  EXPECT_FALSE(RefLogitsWriter::Create(path, SmallPlan(), kVocab, kVocab + 1).ok());
  auto w = RefLogitsWriter::Create(path, SmallPlan(), kVocab, kK);
  ASSERT_TRUE(w.ok());
  Status st = w->Finish();  // no records
  EXPECT_NE(st.reason().find("0 records written, 5 planned"), std::string::npos) << st.ToString();
  EXPECT_FALSE(fs::exists(path));
}

TEST(RefLogits, CorruptFilesFailWithTheirOwnMessage) {
  const std::string good_path = WriteSmall("qforge_ref_good.qfref");
  const std::vector<uint8_t> good = ReadAll(good_path);
  const std::string path = (fs::temp_directory_path() / "qforge_ref_corrupt.qfref").string();
  const size_t rec0 = kRefHeaderBytes + 2 * 8 + 9 * 4;  // header, plan, tokens
  auto put32 = [](std::vector<uint8_t>& b, size_t off, uint32_t v) { std::memcpy(b.data() + off, &v, 4); };
  auto putf = [](std::vector<uint8_t>& b, size_t off, float v) { std::memcpy(b.data() + off, &v, 4); };
  auto putd = [](std::vector<uint8_t>& b, size_t off, double v) { std::memcpy(b.data() + off, &v, 8); };
  struct Case {
    std::string name;
    std::function<void(std::vector<uint8_t>&)> edit;
    bool fix_checksum;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"empty", [](auto& b) { b.clear(); }, false, "too small"},
      {"truncated", [](auto& b) { b.resize(b.size() - 3); }, false, "does not match its header"},
      {"bad magic", [](auto& b) { b[0] = 'X'; }, false, "bad magic"},
      {"version", [&](auto& b) { put32(b, 8, 9); }, false, "unsupported version 9"},
      {"n_vocab 0", [&](auto& b) { put32(b, 12, 0); }, false, "implausible n_vocab"},
      {"k > n_vocab", [&](auto& b) { put32(b, 16, 41); }, false, "outside [1, n_vocab]"},
      {"huge n_positions", [&](auto& b) { std::memset(b.data() + 32, 0xff, 8); }, false, "does not match its header"},
      {"flipped byte", [&](auto& b) { b[rec0 + 3] ^= 1; }, false, "checksum mismatch"},
      {"seq length", [&](auto& b) { put32(b, kRefHeaderBytes, 1); }, true, "sequence 0: length 1"},
      {"score_from overflow", [&](auto& b) { put32(b, kRefHeaderBytes + 4, 0xffffffffu); }, true, "inconsistent"},
      {"lengths sum", [&](auto& b) { put32(b, kRefHeaderBytes, 5); }, true,
       "sequence lengths sum"},
      {"token id", [&](auto& b) { put32(b, kRefHeaderBytes + 16 + 4, 40); }, true, "token id 40 out of range"},
      {"positions", [&](auto& b) { put32(b, kRefHeaderBytes + 4, 3); }, true, "plan scores 4 positions"},
      {"nan lse", [&](auto& b) { putd(b, rec0, std::nan("")); }, true, "non-finite"},
      {"tail > 1", [&](auto& b) { putd(b, rec0 + 8, 1.5); }, true, "tail mass outside"},
      {"record id", [&](auto& b) { put32(b, rec0 + 20, 99); }, true, "token id 99 out of range or repeated"},
      {"repeated id", [&](auto& b) { std::memcpy(b.data() + rec0 + 24, b.data() + rec0 + 20, 4); }, true,
       "out of range or repeated"},
      {"unsorted", [&](auto& b) { putf(b, rec0 + 20 + 4 * kK + 4, 1e3f); }, true, "not sorted descending"},
  };
  for (const auto& c : cases) {
    std::vector<uint8_t> b = good;
    c.edit(b);
    if (c.fix_checksum) {
      WriteWithChecksum(path, b);
    } else {
      std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
    }
    auto f = RefLogitsFile::Open(path);
    ASSERT_FALSE(f.ok()) << c.name;
    EXPECT_NE(f.status().reason().find(c.expect), std::string::npos) << c.name << ": " << f.status().ToString();
  }
  fs::remove(path);
  fs::remove(good_path);
}

}  // namespace
}  // namespace qforge::eval
