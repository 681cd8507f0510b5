// A table of hand-made broken GGUF files: each must fail with its own message, naming the file and an
// offset, and never crash. Also every truncation of a small valid file.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "gguf_test_util.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

using gguf_test::Bytes;

constexpr uint32_t kF32 = 0, kQ4_0 = 2, kF64 = 28;
constexpr uint32_t kTypeU32 = 4, kTypeBool = 7, kTypeString = 8, kTypeArray = 9, kTypeU64 = 10;

Bytes ArchKv() { return Bytes().Str("general.architecture").U32(kTypeString).Str("llama"); }
Bytes TwoInfos() { return Bytes().Info("a", {8}, kF32, 0).Info("b", {8}, kF32, 32); }

// Header, KV pairs, tensor infos, padding to `align`, then `data` zero bytes.
std::vector<uint8_t> Make(uint64_t n_kv, const Bytes& kvs, uint64_t n_tensors, const Bytes& infos,
                          uint32_t align = 32, size_t data = 64, uint32_t version = 3) {
  Bytes b;
  b.Header(n_tensors, n_kv, version).Raw(kvs.bytes()).Raw(infos.bytes()).PadTo(align).Zeros(data);
  return b.bytes();
}
std::vector<uint8_t> WithKv(const Bytes& kv, uint64_t n_kv = 1) {
  return Make(1 + n_kv, Bytes().Raw(ArchKv().bytes()).Raw(kv.bytes()), 2, TwoInfos());
}
std::vector<uint8_t> WithInfo(const Bytes& info, size_t data = 64) {
  return Make(1, ArchKv(), 1, info, 32, data);
}
std::vector<uint8_t> WithAlignment(const Bytes& value) {
  return WithKv(Bytes().Str("general.alignment").Raw(value.bytes()));
}
// A value of `depth` nested arrays around one empty u8 array.
Bytes Nested(int depth) {
  Bytes b;
  for (int d = 1; d < depth; ++d) b.U32(kTypeArray).U64(1);
  return b.U32(0).U64(0);
}

struct Case {
  const char* name;
  std::vector<uint8_t> bytes;
  const char* message;
};

std::vector<Case> Cases() {
  const uint64_t kHuge = 1ull << 40;
  return {
      {"bad magic", [] { auto b = Make(1, ArchKv(), 2, TwoInfos()); b[3] = 'X'; return b; }(), "not a GGUF file"},
      {"version 1", Make(1, ArchKv(), 2, TwoInfos(), 32, 64, 1), "version 1 is not supported"},
      {"version 2", Make(1, ArchKv(), 2, TwoInfos(), 32, 64, 2), "version 2 is not supported"},
      {"version 4", Make(1, ArchKv(), 2, TwoInfos(), 32, 64, 4), "version 4 is not supported"},
      {"byte-swapped version", Make(1, ArchKv(), 2, TwoInfos(), 32, 64, 0x03000000), "endianness mismatch"},
      {"tensor_count huge", Make(1, ArchKv(), kHuge, TwoInfos()), "tensor infos (tensor_count) cannot fit"},
      {"kv_count huge", Make(kHuge, ArchKv(), 2, TwoInfos()), "metadata pairs (kv_count) cannot fit"},
      {"kv_count 2^64-1", Make(~0ull, ArchKv(), 2, TwoInfos()), "metadata pairs (kv_count) cannot fit"},
      {"counts fit alone, not together", Make(10, ArchKv(), 2, TwoInfos(), 32, 0), "together need"},
      {"key length 2^64-1", Make(1, Bytes().U64(~0ull), 0, Bytes()), "metadata key length 18446744073709551615"},
      {"string value length 2^64-1", WithKv(Bytes().Str("s").U32(kTypeString).U64(~0ull)), "string value length"},
      {"arrays nested 9 deep", WithKv(Bytes().Str("n").U32(kTypeArray).Raw(Nested(9).bytes())),
       "nested deeper than 8"},
      {"array count huge", WithKv(Bytes().Str("arr").U32(kTypeArray).U32(kTypeU32).U64(kHuge)),
       "array count 1099511627776 of u32 cannot fit"},
      {"array of strings count huge", WithKv(Bytes().Str("arr").U32(kTypeArray).U32(kTypeString).U64(~0ull / 4)),
       "of str cannot fit"},
      {"bad value type", WithKv(Bytes().Str("t").U32(13).U32(0)), "invalid metadata value type 13"},
      {"bad array element type", WithKv(Bytes().Str("t").U32(kTypeArray).U32(99).U64(0)),
       "invalid array element type 99"},
      {"bool value 2", WithKv(Bytes().Str("flag").U32(kTypeBool).U8(2)), "bool value 2 is neither"},
      {"duplicate key", WithKv(ArchKv()), "duplicate metadata key 'general.architecture'"},
      {"duplicate tensor name", Make(1, ArchKv(), 2, Bytes().Info("a", {8}, kF32, 0).Info("a", {8}, kF32, 32)),
       "duplicate tensor name 'a'"},
      {"name of 64 bytes", WithInfo(Bytes().Info(std::string(64, 'n'), {8}, kF32, 0)),
       "name of 64 bytes is longer than the 63"},
      {"n_dims 0", WithInfo(Bytes().Info("a", {}, kF32, 0)), "n_dims 0 is not in 1..4"},
      {"n_dims 5", WithInfo(Bytes().Info("a", {8, 1, 1, 1, 1}, kF32, 0)), "n_dims 5 is not in 1..4"},
      {"dim 0", WithInfo(Bytes().Info("a", {8, 0}, kF32, 0)), "dimension 1 is 0"},
      {"negative dim", WithInfo(Bytes().Info("a", {1ull << 63}, kF32, 0)), "dimension 0 is -9223372036854775808"},
      {"dims product overflow", WithInfo(Bytes().Info("a", {1ull << 32, 1ull << 32}, kF32, 0)),
       "product of the dimensions overflows"},
      {"byte size overflow", WithInfo(Bytes().Info("a", {1ull << 62}, kF64, 0)), "byte size overflows"},
      {"removed type id 4", WithInfo(Bytes().Info("a", {32}, 4, 0)), "unknown or removed ggml type id 4"},
      {"unknown type id 99", WithInfo(Bytes().Info("a", {32}, 99, 0)), "unknown or removed ggml type id 99"},
      {"ne[0] not a block multiple", WithInfo(Bytes().Info("a", {16, 2}, kQ4_0, 0)),
       "ne[0] = 16 is not a multiple of the Q4_0 block size 32"},
      {"misaligned offset", WithInfo(Bytes().Info("a", {8}, kF32, 16)), "offset 16 is not a multiple of the alignment 32"},
      {"offset past end", WithInfo(Bytes().Info("a", {8}, kF32, 1024)), "extends past the end of the file"},
      {"offset near 2^64", WithInfo(Bytes().Info("a", {8}, kF32, ~0ull - 31)), "extends past the end of the file"},
      {"data cut short", WithInfo(Bytes().Info("a", {8}, kF32, 0), 31), "extends past the end of the file"},
      {"overlapping tensors", Make(1, ArchKv(), 2, Bytes().Info("a", {16}, kF32, 0).Info("b", {8}, kF32, 32), 32, 96),
       "tensors 'a' [0, 64) and 'b' [32, 64) overlap"},
      {"alignment 0", WithAlignment(Bytes().U32(kTypeU32).U32(0)), "general.alignment 0 is not a power of two"},
      {"alignment 3", WithAlignment(Bytes().U32(kTypeU32).U32(3)), "general.alignment 3 is not a power of two"},
      {"alignment 2 MiB", WithAlignment(Bytes().U32(kTypeU32).U32(2u << 20)), "in 1..1048576"},
      {"alignment not u32", WithAlignment(Bytes().U32(kTypeU64).U64(32)), "general.alignment must be a u32, not u64"},
  };
}

TEST(GgufCorrupt, EachBrokenFileFailsWithItsOwnMessage) {
  for (const Case& c : Cases()) {
    auto g = ParseGguf(c.bytes, "corrupt.gguf");
    ASSERT_FALSE(g.ok()) << c.name;
    const Status& s = g.status();
    EXPECT_NE(s.reason().find(c.message), std::string::npos) << c.name << ": got " << s.ToString();
    EXPECT_EQ(s.file(), "corrupt.gguf") << c.name;
    EXPECT_GE(s.offset(), 0) << c.name;
    EXPECT_LE(s.offset(), static_cast<int64_t>(c.bytes.size())) << c.name;
  }
}

TEST(GgufCorrupt, TheBaseFilesOfTheTableAreValid) {
  // So that each case above fails for its own reason, not the base file's.
  for (const auto& bytes : {Make(1, ArchKv(), 2, TwoInfos()), WithKv(Bytes().Str("ok").U32(kTypeBool).U8(1)),
                            WithKv(Bytes().Str("n").U32(kTypeArray).Raw(Nested(8).bytes())),
                            WithInfo(Bytes().Info(std::string(63, 'n'), {8}, kF32, 0)),
                            WithInfo(Bytes().Info("a", {32, 1, 1, 1}, kQ4_0, 0)),
                            Make(2, Bytes().Raw(ArchKv().bytes()).Str("general.alignment").U32(kTypeU32).U32(1u << 20),
                                 1, Bytes().Info("a", {8}, kF32, 0), 1u << 20, 32)}) {
    auto g = ParseGguf(bytes, "valid.gguf");
    EXPECT_TRUE(g.ok()) << g.status().ToString();
  }
}

TEST(GgufCorrupt, EveryTruncationFails) {
  // The last tensor ends exactly at the end of the file, so every proper prefix is missing something.
  const std::vector<uint8_t> full =
      Make(2, Bytes().Raw(ArchKv().bytes()).Str("v").U32(kTypeArray).U32(kTypeString).U64(2).Str("x").Str(""), 2,
           TwoInfos());
  ASSERT_TRUE(ParseGguf(full, "full.gguf").ok());
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);  // a copy, so ASan sees reads past it
    auto g = ParseGguf(prefix, "cut.gguf");
    ASSERT_FALSE(g.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_GE(g.status().offset(), 0) << n;
  }
}

// Seeds for tests/fuzz/gguf_fuzz: QFORGE_WRITE_GGUF_SEEDS=tests/fuzz/corpus/gguf_fuzz qforge_formats_test
// --gtest_filter=GgufFuzzSeeds.*  (a no-op without the variable).
TEST(GgufFuzzSeeds, WriteWhenAsked) {
  const char* dir = std::getenv("QFORGE_WRITE_GGUF_SEEDS");
  if (dir == nullptr) GTEST_SKIP() << "QFORGE_WRITE_GGUF_SEEDS not set";
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds = {
      {"two_tensors.gguf", Make(1, ArchKv(), 2, TwoInfos())},
      {"nested_arrays.gguf", WithKv(Bytes().Str("n").U32(kTypeArray).Raw(Nested(3).bytes()))},
      {"bool_and_strings.gguf",
       Make(3, Bytes().Raw(ArchKv().bytes()).Str("b").U32(kTypeBool).U8(1).Str("v").U32(kTypeArray)
                   .U32(kTypeString).U64(2).Str("x").Str(""), 2, TwoInfos())},
      {"all_scalars.gguf",
       WithKv(Bytes().Str("u8").U32(0).U8(1).Str("i8").U32(1).U8(0xff).Str("u16").U32(2).Put<uint16_t>(2)
                  .Str("i16").U32(3).Put<int16_t>(-3).Str("u32").U32(4).U32(4).Str("i32").U32(5).Put<int32_t>(-5)
                  .Str("f32").U32(6).Put(1.5f).Str("u64").U32(10).U64(10).Str("i64").U32(11).Put<int64_t>(-11)
                  .Str("f64").U32(12).Put(2.5).Str("es").U32(kTypeString).Str(""), 11)},
      {"q4_0_4d.gguf", WithInfo(Bytes().Info("a", {32, 1, 1, 1}, kQ4_0, 0))},
      {"alignment_64.gguf", Make(2, Bytes().Raw(ArchKv().bytes()).Str("general.alignment").U32(kTypeU32).U32(64),
                                 1, Bytes().Info("a", {8}, kF32, 0), 64, 64)},
  };
  for (const auto& [name, bytes] : seeds) {
    ASSERT_TRUE(ParseGguf(bytes, name).ok()) << name;
    std::ofstream(std::filesystem::path(dir) / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

}  // namespace
}  // namespace qforge
