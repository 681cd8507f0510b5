// OpenModelSource: decides what a user-given path is (Hugging Face directory, GGUF file, bare
// safetensors file or llama2.c checkpoint) by looking at it, and hands it to the matching reader.
#include "qforge/formats/model_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qforge/formats/gguf.h"
#include "qforge/formats/hf_model.h"
#include "qforge/formats/llama2c.h"

namespace qforge {
namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads up to 4 leading bytes; a shorter file simply does not carry the GGUF magic.
StatusOr<bool> HasGgufMagic(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Error(std::string("cannot open: ") + std::strerror(errno), path);
  char magic[4] = {};
  ssize_t n = ::read(fd, magic, sizeof(magic));
  int err = errno;
  ::close(fd);
  if (n < 0) return Status::Error(std::string("cannot read: ") + std::strerror(err), path);
  return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace

StatusOr<SourceModel> OpenModelSource(const std::string& path, const OpenOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Status::Error(std::string("cannot open model: ") + std::strerror(errno), path);
  if (S_ISDIR(st.st_mode)) return OpenHfSource(path);
  if (!S_ISREG(st.st_mode)) return Status::Error("not a regular file or directory", path);
  // A lone safetensors file lacks the hyper-parameters (config.json) and the tokenizer.
  if (EndsWith(path, ".safetensors"))
    return Status::Error("a bare .safetensors file has no config.json; pass its directory", path);
  QF_ASSIGN_OR_RETURN(bool is_gguf, HasGgufMagic(path));
  if (is_gguf) return OpenGgufSource(path);
  // llama2.c checkpoints have no magic; its header validation rejects anything else with a clear reason.
  return OpenLlama2cSource(path, options.tokenizer);
}

}  // namespace qforge
