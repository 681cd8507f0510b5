// GPTQ into GGUF block types (include/qforge/algo/gptq.h).
//
// The loop is written once against BlockCodec (how a format chooses a block's scales and stores a level);
// GgufCodec drives the registry encoders, IntCodec the integer schemes of quant/int_schemes.h.
//
// Per weight matrix: (1) order the columns (identity, or act-order by whole quant blocks), (2) damp H and
// factor its inverse as U^T U with U upper triangular, escalating the damping when the factorization or
// the loop produces non-finite numbers, (3) for tiles of rows, walk the columns in order: at a quant
// block's first column the registry encoder chooses the block's scales from the current weights, every
// column is rounded to its element grid (algo/block_grid.h) and its scaled error is subtracted from the
// later columns — inside a batch column by column, beyond the batch once per batch as one matrix product.
//
// Determinism: rows are independent given U, and tiles have a fixed size (not derived from the thread
// count), so every row sees the same sequence of floating-point operations whatever the thread count.
#include "qforge/algo/gptq.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "qforge/algo/block_grid.h"
#include "qforge/core/checked.h"
#include "qforge/core/parallel.h"
#include "qforge/quant/int_schemes.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kTileRows = 16;       // rows per lazy-update product; fixed so bytes never depend on threads
constexpr int kDampingEscalations = 4;  // damp, 10x, 100x, ... before giving up
constexpr double kDampingGrowth = 10.0;

// How a quantization format looks to the GPTQ loop. Block b of a row covers columns [b·width, b·width + len)
// (the last block of a row may be shorter for the integer group schemes).
class BlockCodec {
 public:
  virtual ~BlockCodec() = default;
  // Chooses the scales of block `blk` of `row` from the block's current values x[0..len) (column order) and
  // reports every element's grid and the level round-to-nearest gives it with those scales.
  virtual void Choose(int64_t row, int64_t blk, const float* x, int64_t len, ElementGrid* grids, int* levels) = 0;
  // Element (row, col) takes `level` of the grid Choose reported.
  virtual void Store(int64_t row, int64_t col, int level) = 0;
};

// GGUF block types: the registry encoder chooses, the block's own bytes hold the levels.
class GgufCodec final : public BlockCodec {
 public:
  GgufCodec(GgmlType type, int64_t row_bytes, uint8_t* out, const float* importance)
      : type_(type), qt_(FindQuantType(type)), layout_(GgmlLayout(type)), row_bytes_(row_bytes), out_(out),
        importance_(importance) {}
  void Choose(int64_t row, int64_t blk, const float* x, int64_t len, ElementGrid* grids, int* levels) override {
    uint8_t* bytes = Block(row, blk);
    qt_->encode(x, bytes, len, importance_ ? importance_ + blk * layout_.block_size : nullptr);
    for (int k = 0; k < len; ++k) {
      grids[k] = GetElementGrid(type_, bytes, k);
      levels[k] = GetLevel(type_, bytes, k);
    }
  }
  void Store(int64_t row, int64_t col, int level) override {
    SetLevel(type_, Block(row, col / layout_.block_size), static_cast<int>(col % layout_.block_size), level);
  }

 private:
  uint8_t* Block(int64_t row, int64_t blk) const { return out_ + row * row_bytes_ + blk * layout_.type_size; }
  GgmlType type_;
  const QuantType* qt_;
  GgmlTypeLayout layout_;
  int64_t row_bytes_;
  uint8_t* out_;
  const float* importance_;
};

// Integer schemes: scales (and zero points) with the rules of QuantizeInt, levels kept as ints until packed.
class IntCodec final : public BlockCodec {
 public:
  IntCodec(const IntScheme& scheme, int64_t rows, int64_t cols, float tensor_scale)
      : scheme_(scheme), groups_(static_cast<int64_t>(scheme.GroupsPerRow(cols))), cols_(cols),
        tensor_scale_(tensor_scale), levels_(rows * cols), scales_(scheme.ScaleRows(rows) * groups_, 0.0f),
        zeros_(scales_.size(), 0) {
    if (scheme.granularity == IntGranularity::kTensor) scales_[0] = tensor_scale;  // rows never write it
  }
  void Choose(int64_t row, int64_t blk, const float* x, int64_t len, ElementGrid* grids, int* levels) override {
    const int qmax = scheme_.qmax();
    float scale = tensor_scale_;
    int zero = 0;
    if (scheme_.symmetric && scheme_.granularity != IntGranularity::kTensor) {
      float absmax = 0.0f;
      for (int64_t k = 0; k < len; ++k) absmax = std::max(absmax, std::fabs(x[k]));
      scale = absmax / static_cast<float>(qmax);
    } else if (!scheme_.symmetric) {
      float mn = x[0], mx = x[0];
      for (int64_t k = 0; k < len; ++k) {
        mn = std::min(mn, x[k]);
        mx = std::max(mx, x[k]);
      }
      AsymmetricParams(mn, mx, qmax, &scale, &zero);
    }
    if (scheme_.granularity != IntGranularity::kTensor) {  // disjoint per row: threads never share an entry
      scales_[row * groups_ + blk] = scale;
      zeros_[row * groups_ + blk] = static_cast<uint8_t>(zero);
    }
    ElementGrid g;
    g.scale = scale;
    g.zero = zero;
    g.lo = scheme_.qmin();
    g.hi = qmax;
    for (int64_t k = 0; k < len; ++k) {
      grids[k] = g;
      levels[k] = scheme_.symmetric ? QuantizeSymmetric(x[k], scale, qmax) : QuantizeAsymmetric(x[k], scale, zero, qmax);
    }
  }
  void Store(int64_t row, int64_t col, int level) override { levels_[row * cols_ + col] = static_cast<int16_t>(level); }

  // The storage of quant/int_schemes.h: int8 symmetric as int8, asymmetric as uint8; int4 as nibbles (low =
  // even column), symmetric stored + 8.
  IntQuantized Pack(int64_t rows) const {
    IntQuantized q;
    q.scheme = scheme_;
    q.rows = static_cast<uint64_t>(rows);
    q.cols = static_cast<uint64_t>(cols_);
    const uint64_t row_bytes = scheme_.PackedRowBytes(q.cols);
    q.qweight.assign(q.rows * row_bytes, 0);
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* qr = q.qweight.data() + r * row_bytes;
      for (int64_t c = 0; c < cols_; ++c) {
        const int level = levels_[r * cols_ + c];
        if (scheme_.bits == 8) {
          qr[c] = scheme_.symmetric ? static_cast<uint8_t>(static_cast<int8_t>(level)) : static_cast<uint8_t>(level);
        } else {
          const unsigned v = static_cast<unsigned>(scheme_.symmetric ? level + 8 : level) & 15u;
          qr[c / 2] = static_cast<uint8_t>(c % 2 == 0 ? (qr[c / 2] & 0xF0) | v : (qr[c / 2] & 0x0F) | v << 4);
        }
      }
    }
    q.scales = scales_;
    if (!scheme_.symmetric) q.zeros = zeros_;
    return q;
  }

 private:
  IntScheme scheme_;
  int64_t groups_, cols_;
  float tensor_scale_;
  std::vector<int16_t> levels_;
  std::vector<float> scales_;
  std::vector<uint8_t> zeros_;
};

// The processing order: positions → original columns (perm) and back (pos); the position where each block
// starts; lazy-update batches as position ranges made of whole blocks.
struct ColumnOrder {
  int64_t width = 0;  // columns per block (the last block of a row may be shorter)
  std::vector<int64_t> perm, pos, block_start;
  std::vector<std::pair<int64_t, int64_t>> batches;
  int64_t max_batch = 0;
};

// act-order keeps each quant block contiguous, because a block has one set of scales that must be chosen
// before its first column is rounded: blocks go by decreasing summed H diagonal (their total activation
// energy), columns inside a block by decreasing diagonal. Ties keep the original order (stable sort).
ColumnOrder MakeColumnOrder(const double* H, int64_t cols, int64_t width, bool act_order, int64_t batch_target) {
  ColumnOrder order;
  order.width = width;
  const int64_t nblocks = (cols + width - 1) / width;
  auto block_len = [&](int64_t b) { return std::min(width, cols - b * width); };
  std::vector<int64_t> blocks(nblocks);
  std::iota(blocks.begin(), blocks.end(), int64_t{0});
  if (act_order) {
    std::vector<double> energy(nblocks, 0.0);
    for (int64_t c = 0; c < cols; ++c) energy[c / width] += H[c * cols + c];
    std::stable_sort(blocks.begin(), blocks.end(), [&](int64_t a, int64_t b) { return energy[a] > energy[b]; });
  }
  order.perm.resize(cols);
  order.block_start.resize(nblocks);
  int64_t p = 0, batch_begin = 0;
  for (int64_t b : blocks) {
    order.block_start[b] = p;
    auto first = order.perm.begin() + p;
    std::iota(first, first + block_len(b), b * width);
    if (act_order)
      std::stable_sort(first, first + block_len(b), [&](int64_t x, int64_t y) { return H[x * cols + x] > H[y * cols + y]; });
    p += block_len(b);
    if (p - batch_begin >= batch_target || p == cols) {
      order.batches.emplace_back(batch_begin, p);
      order.max_batch = std::max(order.max_batch, p - batch_begin);
      batch_begin = p;
    }
  }
  order.pos.resize(cols);
  for (int64_t q = 0; q < cols; ++q) order.pos[order.perm[q]] = q;
  return order;
}

// U upper triangular (in position order) with (H_perm + damping·I)^-1 = U^T U. Computed with a single
// Cholesky of the index-reversed matrix J·H·J = L·L^T: then H^-1 = (J·L^-1·J)^T (J·L^-1·J) and J·L^-1·J is
// upper triangular. False if the damped H is not numerically positive definite.
bool InverseCholeskyUpper(const double* H, const ColumnOrder& order, double damping, RowMatrixF* U) {
  const int64_t n = static_cast<int64_t>(order.perm.size());
  RowMatrixD a(n, n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ci = order.perm[n - 1 - i];
    for (int64_t j = 0; j < n; ++j) a(i, j) = H[ci * n + order.perm[n - 1 - j]];
    a(i, i) += damping;
  }
  Eigen::LLT<Eigen::Ref<RowMatrixD>> llt(a);  // in place: a's lower triangle becomes L
  if (llt.info() != Eigen::Success) return false;
  RowMatrixD linv = RowMatrixD::Identity(n, n);
  llt.matrixL().solveInPlace(linv);
  U->setZero(n, n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i; j < n; ++j) {
      const double v = linv(n - 1 - i, n - 1 - j);
      if (!std::isfinite(v)) return false;
      (*U)(i, j) = static_cast<float>(v);
    }
    if (!((*U)(i, i) > 0.0f) || !std::isfinite(1.0f / (*U)(i, i))) return false;
  }
  return true;
}

// Per-thread buffers, reused across tiles.
struct TileScratch {
  RowMatrixF w;                     // tile rows x cols, position order, error-updated as the loop goes
  RowMatrixF err;                   // tile rows x batch: scaled errors of the current batch
  std::vector<float> x;             // one block's current values in column order
  std::vector<float> chosen_from;   // tile rows x width: values the block's scales were chosen from
  std::vector<int> rtn_levels;      // tile rows x width: the levels round-to-nearest gave them
  std::vector<ElementGrid> grids;   // tile rows x width
};

// Runs GPTQ on rows [r0, r1). False if a non-finite value appeared (the caller escalates damping).
bool QuantizeTile(BlockCodec& codec, const float* W, int64_t cols, const ColumnOrder& order, const RowMatrixF& U,
                  int64_t r0, int64_t r1, TileScratch& s) {
  const int64_t nr = r1 - r0, width = order.width;
  s.w.resize(nr, cols);
  for (int64_t r = 0; r < nr; ++r) {
    const float* src = W + (r0 + r) * cols;
    for (int64_t p = 0; p < cols; ++p) s.w(r, p) = src[order.perm[p]];
  }
  s.err.resize(nr, order.max_batch);
  s.x.resize(width);
  s.chosen_from.resize(nr * width);
  s.rtn_levels.resize(nr * width);
  s.grids.resize(nr * width);

  for (const auto& [i1, i2] : order.batches) {
    for (int64_t p = i1; p < i2; ++p) {
      const int64_t c = order.perm[p], blk = c / width, e = c % width;
      if (p == order.block_start[blk]) {
        // The loop reached this block's first column: its scales are chosen from the block's current
        // (already error-corrected) weights, exactly as round-to-nearest would choose them for those values.
        const int64_t len = std::min(width, cols - blk * width);
        for (int64_t r = 0; r < nr; ++r) {
          for (int64_t k = 0; k < len; ++k) {
            s.x[k] = s.w(r, order.pos[blk * width + k]);
            if (!std::isfinite(s.x[k])) return false;
          }
          codec.Choose(r0 + r, blk, s.x.data(), len, &s.grids[r * width], &s.rtn_levels[r * width]);
          std::copy(s.x.begin(), s.x.begin() + len, s.chosen_from.begin() + r * width);
        }
      }
      const float u_pp = U(p, p);
      const float* u_row = U.data() + p * cols;
      for (int64_t r = 0; r < nr; ++r) {
        const ElementGrid& grid = s.grids[r * width + e];
        const float w = s.w(r, p);
        int level = s.rtn_levels[r * width + e];
        // An unchanged weight keeps round-to-nearest's own level (an encoder may round against its unrounded
        // scale); a weight moved by earlier errors goes to the nearest value of the block's grid.
        if (w != s.chosen_from[r * width + e]) level = grid.Nearest(w, level);
        codec.Store(r0 + r, c, level);
        const float scaled_err = (w - grid.Value(level)) / u_pp;
        if (!std::isfinite(scaled_err)) return false;
        s.err(r, p - i1) = scaled_err;
        float* w_row = s.w.data() + r * cols;
        for (int64_t k = p + 1; k < i2; ++k) w_row[k] -= scaled_err * u_row[k];
      }
    }
    if (i2 < cols) {
      // Lazy update: the batch's errors reach the remaining columns in one product.
      s.w.rightCols(cols - i2).noalias() -= s.err.leftCols(i2 - i1) * U.block(i1, i2, i2 - i1, cols - i2);
    }
  }
  return true;
}

std::string TensorLabel(std::string_view name) { return "tensor " + std::string(name); }

// Checks shapes and finiteness of W and H common to every format.
Status CheckInputs(const std::string& label, const float* W, int64_t rows, int64_t cols, const double* H,
                   const GptqOptions& options) {
  if (rows <= 0 || cols <= 0 || W == nullptr || H == nullptr)
    return Status::Error(label + ": GPTQ needs a non-empty weight matrix and its Hessian");
  const auto w_elems = CheckedMul(static_cast<uint64_t>(rows), static_cast<uint64_t>(cols));
  const auto h_elems = CheckedMul(static_cast<uint64_t>(cols), static_cast<uint64_t>(cols));
  if (!w_elems || !h_elems || *h_elems > (uint64_t{1} << 40))
    return Status::Error(label + ": shape " + std::to_string(rows) + " x " + std::to_string(cols) + " is too large for GPTQ");
  if (!(options.damp >= 0.0) || !std::isfinite(options.damp) || options.block_columns <= 0)
    return Status::Error(label + ": GPTQ options need damp >= 0 and block_columns > 0");
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(W[i]))
      return Status::Error(label + ": weight at row " + std::to_string(i / cols) + ", column " +
                           std::to_string(i % cols) + " is " + (std::isnan(W[i]) ? "NaN" : "infinite"));
  for (int64_t i = 0; i < cols * cols; ++i)
    if (!std::isfinite(H[i]))
      return Status::Error(label + ": Hessian entry (" + std::to_string(i / cols) + ", " + std::to_string(i % cols) +
                           ") is not finite (calibration activations overflowed?)");
  for (int64_t c = 0; c < cols; ++c)
    if (H[c * cols + c] < 0.0)
      return Status::Error(label + ": Hessian diagonal " + std::to_string(c) + " is negative: not X^T X");
  return Status::Ok();
}

// Damping, factorization and the row loop, with escalation; `width` = columns per block.
Status RunGptq(const std::string& label, BlockCodec& codec, const float* W, int64_t rows, int64_t cols,
               const double* H, int64_t width, const GptqOptions& options) {
  double diag_sum = 0.0;
  for (int64_t c = 0; c < cols; ++c) diag_sum += H[c * cols + c];
  // An all-zero H (no calibration input reached this layer) has no preferred direction: damping against
  // 1 turns it into a multiple of the identity, i.e. plain round-to-nearest.
  const double mean_diag = diag_sum > 0.0 ? diag_sum / static_cast<double>(cols) : 1.0;
  const int64_t batch_target = std::max<int64_t>(width, (options.block_columns + width - 1) / width * width);
  const ColumnOrder order = MakeColumnOrder(H, cols, width, options.act_order, batch_target);

  RowMatrixF U;
  double damp = options.damp;
  for (int attempt = 0; attempt <= kDampingEscalations; ++attempt) {
    if (attempt > 0) damp = damp > 0.0 ? damp * kDampingGrowth : 1e-6;  // damp 0 asked for: start small
    if (!InverseCholeskyUpper(H, order, damp * mean_diag, &U)) continue;
    const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
    std::atomic<bool> finite{true};
    ParallelFor(tiles, std::max(1, options.threads), [&](int64_t t0, int64_t t1) {
      TileScratch scratch;
      for (int64_t t = t0; t < t1 && finite.load(std::memory_order_relaxed); ++t) {
        const int64_t r0 = t * kTileRows, r1 = std::min(rows, r0 + kTileRows);
        if (!QuantizeTile(codec, W, cols, order, U, r0, r1, scratch)) finite.store(false);
      }
    });
    if (finite.load()) return Status::Ok();
  }
  return Status::Error(label + ": GPTQ produced non-finite values (singular or ill-conditioned Hessian) even with " +
                       "damping escalated to " + std::to_string(damp) + " of the mean diagonal");
}

}  // namespace

bool GptqSupportsType(GgmlType type) { return BlockGridSupports(type) && FindQuantType(type) != nullptr; }

Status GptqQuantize(std::string_view name, GgmlType type, const float* W, int64_t rows, int64_t cols,
                    const double* H, std::span<uint8_t> out, const GptqOptions& options) {
  const std::string label = TensorLabel(name);
  if (!GptqSupportsType(type))
    return Status::Error(label + ": GPTQ does not support type " + std::string(GgmlTypeName(type)));
  QF_RETURN_IF_ERROR(CheckInputs(label, W, rows, cols, H, options));
  const GgmlTypeLayout layout = GgmlLayout(type);
  if (cols % layout.block_size != 0)
    return Status::Error(label + ": row length " + std::to_string(cols) + " is not a multiple of " +
                         std::string(layout.name) + "'s block size " + std::to_string(layout.block_size));
  const int64_t row_bytes = cols / layout.block_size * layout.type_size;
  const auto total_bytes = CheckedMul(static_cast<uint64_t>(rows), static_cast<uint64_t>(row_bytes));
  if (!total_bytes || out.size() != *total_bytes)
    return Status::Error(label + ": output buffer holds " + std::to_string(out.size()) + " bytes, the encoded tensor needs " +
                         std::to_string(rows) + " x " + std::to_string(row_bytes));
  GgufCodec codec(type, row_bytes, out.data(), options.importance);
  return RunGptq(label, codec, W, rows, cols, H, layout.block_size, options);
}

StatusOr<IntQuantized> GptqQuantizeInt(std::string_view name, const IntScheme& scheme, const float* W, int64_t rows,
                                       int64_t cols, const double* H, const GptqOptions& options) {
  const std::string label = TensorLabel(name);
  if ((scheme.bits != 8 && scheme.bits != 4) || (scheme.granularity == IntGranularity::kGroup && scheme.group_size == 0) ||
      (scheme.granularity == IntGranularity::kTensor && !scheme.symmetric))
    return Status::Error(label + ": invalid integer scheme " + scheme.name);
  QF_RETURN_IF_ERROR(CheckInputs(label, W, rows, cols, H, options));
  // Per-tensor: one scale for all rows cannot follow any row's updates, so it is RTN's, from the original W.
  float tensor_scale = 0.0f;
  if (scheme.granularity == IntGranularity::kTensor) {
    float absmax = 0.0f;
    for (int64_t i = 0; i < rows * cols; ++i) absmax = std::max(absmax, std::fabs(W[i]));
    tensor_scale = absmax / static_cast<float>(scheme.qmax());
  }
  const int64_t width = scheme.granularity == IntGranularity::kGroup
                            ? static_cast<int64_t>(std::min<uint64_t>(scheme.group_size, static_cast<uint64_t>(cols)))
                            : cols;
  IntCodec codec(scheme, rows, cols, tensor_scale);
  QF_RETURN_IF_ERROR(RunGptq(label, codec, W, rows, cols, H, width, options));
  return codec.Pack(rows);
}

}  // namespace qforge
