// GPTQ into GGUF block types (include/qforge/algo/gptq.h).
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
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kTileRows = 16;       // rows per lazy-update product; fixed so bytes never depend on threads
constexpr int kDampingEscalations = 4;  // damp, 10x, 100x, ... before giving up
constexpr double kDampingGrowth = 10.0;

// positions → original columns (perm) and back (pos). Quant blocks occupy whole aligned runs of positions.
struct ColumnOrder {
  std::vector<int64_t> perm;
  std::vector<int64_t> pos;
};

// act-order keeps each quant block contiguous, because a block has one set of scales that must be chosen
// before its first column is rounded: blocks go by decreasing summed H diagonal (their total activation
// energy), columns inside a block by decreasing diagonal. Ties keep the original order (stable sort).
ColumnOrder MakeColumnOrder(const double* H, int64_t cols, int64_t block, bool act_order) {
  ColumnOrder order;
  order.perm.resize(cols);
  std::iota(order.perm.begin(), order.perm.end(), int64_t{0});
  if (act_order) {
    const int64_t nblocks = cols / block;
    std::vector<double> block_energy(nblocks, 0.0);
    for (int64_t c = 0; c < cols; ++c) block_energy[c / block] += H[c * cols + c];
    std::vector<int64_t> blocks(nblocks);
    std::iota(blocks.begin(), blocks.end(), int64_t{0});
    std::stable_sort(blocks.begin(), blocks.end(),
                     [&](int64_t a, int64_t b) { return block_energy[a] > block_energy[b]; });
    int64_t p = 0;
    for (int64_t b : blocks) {
      auto first = order.perm.begin() + p;
      std::iota(first, first + block, b * block);
      std::stable_sort(first, first + block, [&](int64_t x, int64_t y) { return H[x * cols + x] > H[y * cols + y]; });
      p += block;
    }
  }
  order.pos.resize(cols);
  for (int64_t p = 0; p < cols; ++p) order.pos[order.perm[p]] = p;
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

struct Problem {
  GgmlType type;
  const QuantType* qt;
  int64_t block;      // elements per quant block
  int64_t type_size;  // bytes per quant block
  int64_t row_bytes;
  const float* W;
  int64_t rows, cols;
  const float* importance;
  int64_t batch;      // lazy-update batch, whole quant blocks
};

// Per-thread buffers, reused across tiles.
struct TileScratch {
  RowMatrixF w;                     // tile rows x cols, position order, error-updated as the loop goes
  RowMatrixF err;                   // tile rows x batch: scaled errors of the current batch
  std::vector<float> x;             // one block's current values in element order
  std::vector<float> chosen_from;   // tile rows x block: values the block's scales were chosen from
  std::vector<ElementGrid> grids;   // tile rows x block
};

// Runs GPTQ on rows [r0, r1). False if a non-finite value appeared (the caller escalates damping).
bool QuantizeTile(const Problem& pb, const ColumnOrder& order, const RowMatrixF& U, int64_t r0, int64_t r1,
                  uint8_t* out, TileScratch& s) {
  const int64_t nr = r1 - r0, cols = pb.cols, bs = pb.block;
  s.w.resize(nr, cols);
  for (int64_t r = 0; r < nr; ++r) {
    const float* src = pb.W + (r0 + r) * cols;
    for (int64_t p = 0; p < cols; ++p) s.w(r, p) = src[order.perm[p]];
  }
  s.err.resize(nr, pb.batch);
  s.x.resize(bs);
  s.chosen_from.resize(nr * bs);
  s.grids.resize(nr * bs);

  for (int64_t i1 = 0; i1 < cols; i1 += pb.batch) {
    const int64_t i2 = std::min(cols, i1 + pb.batch);
    for (int64_t p = i1; p < i2; ++p) {
      const int64_t c = order.perm[p], blk = c / bs, e = c % bs;
      if (p % bs == 0) {
        // The loop reached this block's first column: its scales come from the registry encoder, fed the
        // block's current (already error-corrected) weights, exactly as RTN would choose them for those values.
        for (int64_t r = 0; r < nr; ++r) {
          for (int64_t k = 0; k < bs; ++k) {
            s.x[k] = s.w(r, order.pos[blk * bs + k]);
            if (!std::isfinite(s.x[k])) return false;
          }
          uint8_t* bytes = out + (r0 + r) * pb.row_bytes + blk * pb.type_size;
          pb.qt->encode(s.x.data(), bytes, bs, pb.importance ? pb.importance + blk * bs : nullptr);
          for (int64_t k = 0; k < bs; ++k) {
            s.chosen_from[r * bs + k] = s.x[k];
            s.grids[r * bs + k] = GetElementGrid(pb.type, bytes, static_cast<int>(k));
          }
        }
      }
      const float u_pp = U(p, p);
      const float* u_row = U.data() + p * cols;
      for (int64_t r = 0; r < nr; ++r) {
        uint8_t* bytes = out + (r0 + r) * pb.row_bytes + blk * pb.type_size;
        const ElementGrid& grid = s.grids[r * bs + e];
        const float w = s.w(r, p);
        const int encoder_level = GetLevel(pb.type, bytes, static_cast<int>(e));
        int level = encoder_level;
        // An unchanged weight keeps the encoder's own level (the encoder may round against its unrounded
        // scale); a weight moved by earlier errors goes to the nearest value of the block's grid.
        if (w != s.chosen_from[r * bs + e]) {
          level = grid.Nearest(w, encoder_level);
          if (level != encoder_level) SetLevel(pb.type, bytes, static_cast<int>(e), level);
        }
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

}  // namespace

bool GptqSupportsType(GgmlType type) { return BlockGridSupports(type) && FindQuantType(type) != nullptr; }

Status GptqQuantize(std::string_view name, GgmlType type, const float* W, int64_t rows, int64_t cols,
                    const double* H, std::span<uint8_t> out, const GptqOptions& options) {
  const std::string label = TensorLabel(name);
  if (!GptqSupportsType(type))
    return Status::Error(label + ": GPTQ does not support type " + std::string(GgmlTypeName(type)));
  if (rows <= 0 || cols <= 0 || W == nullptr || H == nullptr)
    return Status::Error(label + ": GPTQ needs a non-empty weight matrix and its Hessian");
  const GgmlTypeLayout layout = GgmlLayout(type);
  if (cols % layout.block_size != 0)
    return Status::Error(label + ": row length " + std::to_string(cols) + " is not a multiple of " +
                         std::string(layout.name) + "'s block size " + std::to_string(layout.block_size));
  const int64_t row_bytes = cols / layout.block_size * layout.type_size;
  const auto total_bytes = CheckedMul(static_cast<uint64_t>(rows), static_cast<uint64_t>(row_bytes));
  const auto w_elems = CheckedMul(static_cast<uint64_t>(rows), static_cast<uint64_t>(cols));
  const auto h_elems = CheckedMul(static_cast<uint64_t>(cols), static_cast<uint64_t>(cols));
  if (!total_bytes || !w_elems || !h_elems || *h_elems > (uint64_t{1} << 40))
    return Status::Error(label + ": shape " + std::to_string(rows) + " x " + std::to_string(cols) + " is too large for GPTQ");
  if (out.size() != *total_bytes)
    return Status::Error(label + ": output buffer holds " + std::to_string(out.size()) + " bytes, the encoded tensor needs " +
                         std::to_string(*total_bytes));
  if (!(options.damp >= 0.0) || !std::isfinite(options.damp) || options.block_columns <= 0)
    return Status::Error(label + ": GPTQ options need damp >= 0 and block_columns > 0");
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(W[i]))
      return Status::Error(label + ": weight at row " + std::to_string(i / cols) + ", column " +
                           std::to_string(i % cols) + " is " + (std::isnan(W[i]) ? "NaN" : "infinite"));
  double diag_sum = 0.0;
  for (int64_t i = 0; i < cols * cols; ++i)
    if (!std::isfinite(H[i]))
      return Status::Error(label + ": Hessian entry (" + std::to_string(i / cols) + ", " + std::to_string(i % cols) +
                           ") is not finite (calibration activations overflowed?)");
  for (int64_t c = 0; c < cols; ++c) {
    if (H[c * cols + c] < 0.0)
      return Status::Error(label + ": Hessian diagonal " + std::to_string(c) + " is negative: not X^T X");
    diag_sum += H[c * cols + c];
  }
  // An all-zero H (no calibration input reached this layer) has no preferred direction: damping against
  // 1 turns it into a multiple of the identity, i.e. plain round-to-nearest.
  const double mean_diag = diag_sum > 0.0 ? diag_sum / static_cast<double>(cols) : 1.0;

  Problem pb{type, FindQuantType(type), layout.block_size, layout.type_size, row_bytes, W, rows, cols,
             options.importance, 0};
  const int64_t bs = pb.block;
  pb.batch = std::max<int64_t>(bs, (options.block_columns + bs - 1) / bs * bs);
  const ColumnOrder order = MakeColumnOrder(H, cols, bs, options.act_order);

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
        if (!QuantizeTile(pb, order, U, r0, r1, out.data(), scratch)) finite.store(false);
      }
    });
    if (finite.load()) return Status::Ok();
  }
  return Status::Error(label + ": GPTQ produced non-finite values (singular or ill-conditioned Hessian) even with " +
                       "damping escalated to " + std::to_string(damp) + " of the mean diagonal");
}

}  // namespace qforge
