// Tests read whole files (outputs to compare byte for byte, evaluation text) in many places: one helper.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qforge::testing {

// The whole file as bytes; empty when it cannot be opened (tests then fail on the content they expect).
inline std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace qforge::testing
