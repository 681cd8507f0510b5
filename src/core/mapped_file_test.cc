// MappedFile and CopyMappedBytes: a span inside a live mapping is read from the file (same bytes as the
// mapping), a span elsewhere is copied from memory, and a file cut short under us is an error naming it.
#include "qforge/core/mapped_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path WriteTemp(const std::string& name, const std::vector<uint8_t>& bytes) {
  const fs::path p = fs::temp_directory_path() / ("qforge_mapped_" + name + "_" + std::to_string(::getpid()));
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 131 + 7) ^ (i >> 9));
  return v;
}

TEST(MappedFile, CopyOfASubspanEqualsTheMappedBytes) {
  const auto bytes = Pattern(300000);
  const fs::path p = WriteTemp("sub", bytes);
  auto f = MappedFile::Open(p.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  for (auto [off, len] : {std::pair<size_t, size_t>{0, 300000}, {1, 4095}, {4097, 123456}, {299999, 1}, {5, 0}}) {
    std::vector<uint8_t> out(len + 1, 0xAB);
    ASSERT_TRUE(CopyMappedBytes((*f)->bytes().subspan(off, len), out.data()).ok());
    EXPECT_TRUE(std::equal(out.begin(), out.begin() + static_cast<long>(len), bytes.begin() + static_cast<long>(off)));
    EXPECT_EQ(out[len], 0xAB) << "wrote past the end";
  }
  f->reset();
  fs::remove(p);
}

TEST(MappedFile, CopyOfMemoryOutsideAnyMappingIsAMemcpy) {
  const auto bytes = Pattern(1000);
  std::vector<uint8_t> out(1000);
  ASSERT_TRUE(CopyMappedBytes(bytes, out.data()).ok());
  EXPECT_EQ(out, bytes);
}

TEST(MappedFile, ATruncatedFileIsAnErrorNamingIt) {
  const auto bytes = Pattern(20000);
  const fs::path p = WriteTemp("trunc", bytes);
  auto f = MappedFile::Open(p.string());
  ASSERT_TRUE(f.ok());
  fs::resize_file(p, 8192);  // another process cuts the file short while we hold it
  std::vector<uint8_t> out(4000);
  const Status s = CopyMappedBytes((*f)->bytes().subspan(10000, 4000), out.data());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find(p.string()), std::string::npos) << s.ToString();
  f->reset();
  fs::remove(p);
}

}  // namespace
}  // namespace qforge
