// Checked arithmetic and the bounds-checked byte reader: overflow and truncation are reported, never wrapped.
#include <gtest/gtest.h>

#include "qforge/core/byte_reader.h"
#include "qforge/core/checked.h"
#include "qforge/core/mapped_file.h"

namespace qforge {
namespace {

TEST(Checked, MulAddAlign) {
  EXPECT_EQ(CheckedMul(1ull << 32, 1ull << 31), 1ull << 63);
  EXPECT_FALSE(CheckedMul(1ull << 32, 1ull << 32).has_value());
  EXPECT_FALSE(CheckedAdd(UINT64_MAX, 1).has_value());
  EXPECT_EQ(CheckedAlignUp(33, 32), 64u);
  EXPECT_EQ(CheckedAlignUp(64, 32), 64u);
  EXPECT_FALSE(CheckedAlignUp(UINT64_MAX - 3, 32).has_value());
  EXPECT_FALSE(CheckedAlignUp(5, 0).has_value());
  EXPECT_TRUE(IsPowerOfTwo(32));
  EXPECT_FALSE(IsPowerOfTwo(0));
  EXPECT_FALSE(IsPowerOfTwo(48));
}

TEST(ByteReader, ReadsLittleEndianAndReportsTruncationWithOffset) {
  const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0xff};
  ByteReader r(data, "x.bin", 100);
  uint32_t v = 0;
  ASSERT_TRUE(r.Read(&v, "count").ok());
  EXPECT_EQ(v, 0x04030201u);
  Status st = r.Read(&v, "tensor count");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.file(), "x.bin");
  EXPECT_EQ(st.offset(), 104);
  EXPECT_NE(st.reason().find("tensor count"), std::string::npos);
  std::span<const uint8_t> s;
  EXPECT_FALSE(r.ReadBytes(UINT64_MAX, &s, "name").ok());
  EXPECT_TRUE(r.ReadBytes(1, &s, "name").ok());
  EXPECT_EQ(s[0], 0xff);
}

TEST(MappedFile, MissingFileIsAnErrorNamingIt) {
  auto f = MappedFile::Open("/nonexistent/qforge.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().file(), "/nonexistent/qforge.gguf");
  auto dir = MappedFile::Open("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().reason().find("not a regular file"), std::string::npos);
}

TEST(Status, FormatsFileOffsetReason) {
  EXPECT_EQ(Status::Error("bad magic", "m.gguf", 0).ToString(), "m.gguf: offset 0: bad magic");
  EXPECT_EQ(Status::Error("no such type").ToString(), "no such type");
  EXPECT_EQ(Status::Error("x").WithContext("tensor a").ToString(), "tensor a: x");
}

}  // namespace
}  // namespace qforge
