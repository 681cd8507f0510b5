// Protobuf wire-format reader for SentencePiece ModelProto (sentencepiece_model.proto): field 1 pieces,
// 2 trainer_spec, 3 normalizer_spec. Every length is checked against the enclosing message, so corrupt
// files produce a Status with the byte offset instead of reading past the buffer.
#include "qforge/formats/sentencepiece_model.h"

#include <cstring>

#include "qforge/core/mapped_file.h"
#include "utf8_check.h"

namespace qforge {
namespace {

// One protobuf message's bytes, with absolute offsets for messages.
class ProtoReader {
 public:
  ProtoReader(std::span<const uint8_t> b, uint64_t base, const std::string& file) : b_(b), base_(base), file_(file) {}
  bool done() const { return pos_ >= b_.size(); }
  uint64_t offset() const { return base_ + pos_; }
  Status Error(const std::string& why) const { return Status::Error(why, file_, static_cast<int64_t>(offset())); }

  Status Varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) return Error("truncated varint");
      uint8_t byte = b_[pos_++];
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) {
        *out = v;
        return Status::Ok();
      }
    }
    return Error("varint longer than 10 bytes");
  }
  // Reads a field key; wire types 3/4 (groups) are not used by sentencepiece and rejected.
  Status Key(uint32_t* field, uint32_t* wire) {
    uint64_t k = 0;
    QF_RETURN_IF_ERROR(Varint(&k));
    *field = static_cast<uint32_t>(k >> 3);
    *wire = static_cast<uint32_t>(k & 7);
    if (*field == 0) return Error("protobuf field number 0");
    return Status::Ok();
  }
  Status Bytes(std::span<const uint8_t>* out, uint64_t* at) {
    uint64_t n = 0;
    QF_RETURN_IF_ERROR(Varint(&n));
    if (n > b_.size() - pos_) return Error("length " + std::to_string(n) + " runs past the end of the message");
    *at = offset();
    *out = b_.subspan(pos_, n);
    pos_ += n;
    return Status::Ok();
  }
  Status Fixed32(uint32_t* out) {
    if (b_.size() - pos_ < 4) return Error("truncated fixed32");
    std::memcpy(out, b_.data() + pos_, 4);  // little-endian hosts only (as the rest of qforge)
    pos_ += 4;
    return Status::Ok();
  }
  Status Skip(uint32_t wire) {
    uint64_t v = 0;
    std::span<const uint8_t> s;
    switch (wire) {
      case 0: return Varint(&v);
      case 1:
        if (b_.size() - pos_ < 8) return Error("truncated fixed64");
        pos_ += 8;
        return Status::Ok();
      case 2: return Bytes(&s, &v);
      case 5: {
        uint32_t u = 0;
        return Fixed32(&u);
      }
      default: return Error("unsupported protobuf wire type " + std::to_string(wire));
    }
  }
  // A varint field as int32 (protobuf int32: negative values are 10-byte varints, truncation is correct).
  Status Int32(uint32_t wire, int32_t* out) {
    if (wire != 0) return Error("expected a varint field");
    uint64_t v = 0;
    QF_RETURN_IF_ERROR(Varint(&v));
    *out = static_cast<int32_t>(static_cast<uint32_t>(v));
    return Status::Ok();
  }

  const std::string& file() const { return file_; }

 private:
  std::span<const uint8_t> b_;
  uint64_t base_;
  const std::string& file_;
  size_t pos_ = 0;
};

Status ParsePiece(std::span<const uint8_t> b, uint64_t at, const std::string& file, SpPiece* p) {
  ProtoReader r(b, at, file);
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    QF_RETURN_IF_ERROR(r.Key(&field, &wire));
    if (field == 1 && wire == 2) {
      std::span<const uint8_t> s;
      uint64_t off = 0;
      QF_RETURN_IF_ERROR(r.Bytes(&s, &off));
      p->piece.assign(reinterpret_cast<const char*>(s.data()), s.size());
      // SentencePiece pieces are UTF-8 text (byte fallback uses "<0xNN>" pieces, not raw bytes).
      const size_t bad = formats_internal::FindInvalidUtf8(p->piece);
      if (bad != std::string_view::npos)
        return Status::Error("piece text is not valid UTF-8 (byte " + std::to_string(bad) + " of " +
                                 std::to_string(s.size()) + ")",
                             file, static_cast<int64_t>(off + bad));
    } else if (field == 2 && wire == 5) {
      uint32_t u = 0;
      QF_RETURN_IF_ERROR(r.Fixed32(&u));
      std::memcpy(&p->score, &u, 4);
    } else if (field == 3) {
      int32_t t = 0;
      QF_RETURN_IF_ERROR(r.Int32(wire, &t));
      if (t < 1 || t > 6) return r.Error("piece type " + std::to_string(t) + " is not a SentencePiece type (1..6)");
      p->type = static_cast<SpPieceType>(t);
    } else {
      QF_RETURN_IF_ERROR(r.Skip(wire));
    }
  }
  return Status::Ok();
}

Status ParseTrainerSpec(std::span<const uint8_t> b, uint64_t at, const std::string& file, SentencePieceModel* m) {
  ProtoReader r(b, at, file);
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    QF_RETURN_IF_ERROR(r.Key(&field, &wire));
    int32_t v = 0;
    switch (field) {
      case 3: QF_RETURN_IF_ERROR(r.Int32(wire, &m->model_type)); break;
      case 4: QF_RETURN_IF_ERROR(r.Int32(wire, &m->vocab_size)); break;
      case 35: QF_RETURN_IF_ERROR(r.Int32(wire, &v)); m->byte_fallback = v != 0; break;
      case 40: QF_RETURN_IF_ERROR(r.Int32(wire, &m->unk_id)); break;
      case 41: QF_RETURN_IF_ERROR(r.Int32(wire, &m->bos_id)); break;
      case 42: QF_RETURN_IF_ERROR(r.Int32(wire, &m->eos_id)); break;
      case 43: QF_RETURN_IF_ERROR(r.Int32(wire, &m->pad_id)); break;
      default: QF_RETURN_IF_ERROR(r.Skip(wire));
    }
  }
  return Status::Ok();
}

Status ParseNormalizerSpec(std::span<const uint8_t> b, uint64_t at, const std::string& file, SentencePieceModel* m) {
  ProtoReader r(b, at, file);
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    QF_RETURN_IF_ERROR(r.Key(&field, &wire));
    int32_t v = 0;
    if (field == 3 || field == 4) {
      QF_RETURN_IF_ERROR(r.Int32(wire, &v));
      (field == 3 ? m->add_dummy_prefix : m->remove_extra_whitespaces) = v != 0;
    } else {
      QF_RETURN_IF_ERROR(r.Skip(wire));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<SentencePieceModel> ParseSentencePieceModel(std::span<const uint8_t> bytes, const std::string& file) {
  SentencePieceModel m;
  ProtoReader r(bytes, 0, file);
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    QF_RETURN_IF_ERROR(r.Key(&field, &wire));
    if ((field == 1 || field == 2 || field == 3) && wire == 2) {
      std::span<const uint8_t> sub;
      uint64_t at = 0;
      QF_RETURN_IF_ERROR(r.Bytes(&sub, &at));
      if (field == 1) {
        SpPiece p;
        QF_RETURN_IF_ERROR(ParsePiece(sub, at, file, &p).WithContext("piece " + std::to_string(m.pieces.size())));
        m.pieces.push_back(std::move(p));
      } else if (field == 2) {
        QF_RETURN_IF_ERROR(ParseTrainerSpec(sub, at, file, &m).WithContext("trainer_spec"));
      } else {
        QF_RETURN_IF_ERROR(ParseNormalizerSpec(sub, at, file, &m).WithContext("normalizer_spec"));
      }
    } else {
      QF_RETURN_IF_ERROR(r.Skip(wire));
    }
  }
  if (m.pieces.empty()) return Status::Error("no pieces: not a SentencePiece model", file);
  auto check_id = [&](int32_t id, const char* what) -> Status {
    if (id >= static_cast<int64_t>(m.pieces.size()))
      return Status::Error(std::string(what) + " " + std::to_string(id) + " is outside the " +
                           std::to_string(m.pieces.size()) + " pieces", file);
    return Status::Ok();
  };
  QF_RETURN_IF_ERROR(check_id(m.unk_id, "unk_id"));
  QF_RETURN_IF_ERROR(check_id(m.bos_id, "bos_id"));
  QF_RETURN_IF_ERROR(check_id(m.eos_id, "eos_id"));
  QF_RETURN_IF_ERROR(check_id(m.pad_id, "pad_id"));
  return m;
}

StatusOr<SentencePieceModel> ReadSentencePieceModel(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> f, MappedFile::Open(path));
  return ParseSentencePieceModel(f->bytes(), path);
}

}  // namespace qforge
