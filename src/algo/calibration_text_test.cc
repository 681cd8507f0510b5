#include "qforge/algo/calibration_text.h"

#include <gtest/gtest.h>

#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

#ifdef QFORGE_SHARED_DIR
StatusOr<Tokenizer> StoriesTokenizer() {
  QF_ASSIGN_OR_RETURN(GgufFile f, ReadGguf(std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf"));
  return Tokenizer::FromMetadata(f.metadata);
}

TEST(CalibrationText, ChunksAreSpreadAcrossTheTextAndStartWithBos) {
  auto tok = StoriesTokenizer();
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  std::string text;
  for (int i = 0; i < 400; ++i) text += "Once upon a time there was a girl named Lily number " + std::to_string(i) + ".\n";
  const std::vector<int32_t> all = tok->Encode(text, true);
  CalibrationOptions opt;
  opt.ctx = 64;
  opt.tokens = 64 * 3;
  auto chunks = CalibrationChunksFromText(text, "mem", *tok, opt);
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_EQ(chunks->size(), 3u);
  const size_t available = all.size() / 64;
  for (size_t i = 0; i < 3; ++i) {
    const auto& c = (*chunks)[i];
    ASSERT_EQ(c.size(), 64u);
    EXPECT_EQ(c[0], tok->bos());
    const size_t slot = i * available / 3;
    for (size_t j = 1; j < 64; ++j) ASSERT_EQ(c[j], all[slot * 64 + j]) << i << " " << j;
  }
  // The last chunk comes from the second half of the text, not from its start.
  EXPECT_GT((2 * available / 3) * 64, all.size() / 2);
}

TEST(CalibrationText, TooShortTextNamesTheSource) {
  auto tok = StoriesTokenizer();
  ASSERT_TRUE(tok.ok());
  CalibrationOptions opt;
  opt.ctx = 512;
  auto chunks = CalibrationChunksFromText("Once upon a time.", "short.txt", *tok, opt);
  ASSERT_FALSE(chunks.ok());
  EXPECT_NE(chunks.status().ToString().find("short.txt"), std::string::npos);
  EXPECT_NE(chunks.status().ToString().find("fewer than one chunk"), std::string::npos);
  opt.file = "/nonexistent/calib.txt";
  auto missing = LoadCalibrationChunks(*tok, opt);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().ToString().find("/nonexistent/calib.txt"), std::string::npos);
}
#endif

}  // namespace
}  // namespace qforge
