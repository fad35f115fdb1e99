// One DNC memory step with content addressing, forward and backward, as two native
// CPU kernels.
//
// Graves et al. (2016), "Hybrid computing using a neural network with dynamic external
// memory", Nature 538, 471-476, Methods: the same step as
// nma_plugins/memories/dnc_step.py, whose docstring writes out the forward (F1)-(F12)
// and the backward (B12)-(B1) these loops follow, labelled the same way. Each batch item
// is independent, so the batch is split across threads; every loop over an N x N link
// matrix runs along its contiguous rows. L_t is never stored for the backward pass: its
// rows are rebuilt from L_{t-1} (whose diagonal, like every link matrix's, is zero).
//
// Shapes: B batch, N slots, W slot width, R read heads. The interface holds, per head
// (the R read heads, then the write head) [key (W), strength]; then [erase (W),
// write vector (W), free gates (R), allocation gate, write gate]; then per read head
// the three read modes [backward, content, forward].

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <vector>

#include "common.h"
#include "steps.h"

namespace {

using namespace nma_native;

// Vectors of length N saved for the backward pass, per batch item.
enum Row : int64_t {
  kPsi,           // retention psi
  kUsageHat,      // u^_t
  kSorted,        // s, the usage sorted ascending
  kExclusive,     // E
  kSortedAlloc,   // a~
  kAllocation,    // a
  kMixed,         // q
  kWriteContent,  // c^w
  kWriteSim,      // its cosine similarities
  kWriteDen,      // its denominators |k||M(i)| + eps
  kNormsPrev,     // |M_{t-1}(i)|
  kNormsNew,      // |M_t(i)|
  kShared,        // the per-read-head rows follow, kPerHead of them per head
};
enum HeadRow : int64_t { kKept, kReadContent, kReadSim, kReadDen, kBackward, kForward, kPerHead };

struct Sizes {
  int64_t batch, slots, width, reads, interface, gates, modes, rows;
};

Sizes sizes_of(const at::Tensor& interface, const at::Tensor& memory, int64_t reads) {
  Sizes z{};
  z.batch = memory.size(0);
  z.slots = memory.size(1);
  z.width = memory.size(2);
  z.reads = reads;
  z.gates = (reads + 1) * (z.width + 1);
  z.modes = z.gates + 2 * z.width + reads + 2;
  z.interface = z.modes + 3 * reads;
  z.rows = kShared + kPerHead * reads;
  TORCH_CHECK(interface.dim() == 2 && interface.size(0) == z.batch &&
                  interface.size(1) == z.interface,
              "dnc_step: interface has shape ", interface.sizes(), ", expected (", z.batch,
              ", ", z.interface, ")");
  return z;
}

// (F1) The constrained interface of one batch item.
template <typename T>
struct Interface {
  std::vector<T> strength, free, modes;  // (R + 1), (R), (R, 3)
  const T* erase_raw;                    // (W), squashed on use
  const T* values;                       // (W), unconstrained
  T allocation_gate, write_gate;

  Interface(const Sizes& z, const T* x) : strength(z.reads + 1), free(z.reads), modes(3 * z.reads) {
    const int64_t W = z.width, R = z.reads;
    for (int64_t h = 0; h <= R; ++h) strength[h] = T(1) + softplus(x[h * (W + 1) + W]);
    const T* gates = x + z.gates;
    erase_raw = gates;
    values = gates + W;
    for (int64_t r = 0; r < R; ++r) free[r] = sigmoid(gates[2 * W + r]);
    allocation_gate = sigmoid(gates[2 * W + R]);
    write_gate = sigmoid(gates[2 * W + R + 1]);
    std::copy(x + z.modes, x + z.modes + 3 * R, modes.begin());
    for (int64_t r = 0; r < R; ++r) softmax(modes.data() + 3 * r, 3);
  }
  const T* key(const Sizes& z, const T* x, int64_t h) const { return x + h * (z.width + 1); }
};

// (F8) Row i of the link matrix: L_t(i, j) = (1 - w_i - w_j) L_{t-1}(i, j) + w_i p_{t-1}(j)
// with L_t(i, i) = 0, from row i of L_{t-1} (`l`), the write weighting w_t and the
// precedence p_{t-1}. The forward pass and the rebuilding of a sequence's links
// (dnc_link_into) both call this, so they agree to the last bit.
template <typename T>
inline void link_row(const T* l, const T* write, const T* precedence, int64_t N, int64_t i,
                     T* out) {
  const T wi = write[i];
#pragma omp simd
  for (int64_t j = 0; j < N; ++j) out[j] = (l[j] + wi * (precedence[j] - l[j])) - l[j] * write[j];
  out[i] = 0;
}

// Rows of L_t per block in both passes' link loops.
constexpr int64_t kLinkBlock = 4;

// Both directions of one read head over `count` (at most kLinkBlock) consecutive rows
// i0.. of L_t, `rows`: b[j] += sum_k w[i0 + k] L_t(i0 + k, j) and
// f[i0 + k] = L_t(i0 + k) . w. A full block reads each element of the rows once for
// both, and loads and stores b once per four rows (once per row made b's accumulation
// the forward pass's costliest loop); the four rows' dot products are four independent
// chains of vector sums.
template <typename T>
inline void directions_block(const T* rows, const T* w, int64_t i0, int64_t count, int64_t N,
                             T* b, T* f) {
  if (count < kLinkBlock) {
    for (int64_t i = i0; i < i0 + count; ++i) {
      const T* row = rows + (i - i0) * N;
      const T wi = w[i];
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) b[j] += wi * row[j];
      f[i] = dot(row, w, N);
    }
    return;
  }
  using V = Vector<T>;
  using Vec = typename V::Type;
  constexpr int64_t kLanes = V::kLanes;
  const T w0 = w[i0], w1 = w[i0 + 1], w2 = w[i0 + 2], w3 = w[i0 + 3];
  const T *r0 = rows, *r1 = rows + N, *r2 = rows + 2 * N, *r3 = rows + 3 * N;
  Vec f0 = {}, f1 = {}, f2 = {}, f3 = {};
  int64_t j = 0;
  for (; j + kLanes <= N; j += kLanes) {
    const Vec a0 = V::load(r0 + j), a1 = V::load(r1 + j);
    const Vec a2 = V::load(r2 + j), a3 = V::load(r3 + j);
    const Vec wj = V::load(w + j);
    V::store(b + j, V::load(b + j) + ((w0 * a0 + w1 * a1) + (w2 * a2 + w3 * a3)));
    f0 += a0 * wj;
    f1 += a1 * wj;
    f2 += a2 * wj;
    f3 += a3 * wj;
  }
  T sums[kLinkBlock] = {V::sum(f0), V::sum(f1), V::sum(f2), V::sum(f3)};
  for (; j < N; ++j) {
    b[j] += (w0 * r0[j] + w1 * r1[j]) + (w2 * r2[j] + w3 * r3[j]);
    sums[0] += r0[j] * w[j];
    sums[1] += r1[j] * w[j];
    sums[2] += r2[j] * w[j];
    sums[3] += r3[j] * w[j];
  }
  for (int64_t k = 0; k < kLinkBlock; ++k) f[i0 + k] = sums[k];
}

// The backward pass of directions_block for one read head over `count` (at most
// kLinkBlock) rows i0.. of L_t, `lt` (count, N), with g_f = `gf` and g_b = `gb`:
// G's rows `gl` (count, N) gain g_f(i) w^r + w^r(i) g_b; the gradient at w^r, `gp`,
// gains g_f(i) L_t(i) (from f_i = L_t(i) . w^r) and, at i, g_b . L_t(i) (from
// b = w^r L_t). A full block loads and stores `gp` once per four rows, and its four
// dot products are independent chains.
template <typename T>
inline void directions_backward_block(const T* lt, const T* w, const T* gb, const T* gf,
                                      int64_t i0, int64_t count, int64_t N, T* gl, T* gp) {
  if (count < kLinkBlock) {
    for (int64_t k = 0; k < count; ++k) {
      const int64_t i = i0 + k;
      const T gfi = gf[i], wri = w[i];
      const T* ltk = lt + k * N;
      T* glk = gl + k * N;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) {
        glk[j] += gfi * w[j] + wri * gb[j];
        gp[j] += gfi * ltk[j];
      }
      gp[i] += dot(gb, ltk, N);
    }
    return;
  }
  using V = Vector<T>;
  using Vec = typename V::Type;
  constexpr int64_t kLanes = V::kLanes;
  const T f0 = gf[i0], f1 = gf[i0 + 1], f2 = gf[i0 + 2], f3 = gf[i0 + 3];
  const T w0 = w[i0], w1 = w[i0 + 1], w2 = w[i0 + 2], w3 = w[i0 + 3];
  const T *l0 = lt, *l1 = lt + N, *l2 = lt + 2 * N, *l3 = lt + 3 * N;
  T *g0 = gl, *g1 = gl + N, *g2 = gl + 2 * N, *g3 = gl + 3 * N;
  Vec d0 = {}, d1 = {}, d2 = {}, d3 = {};
  int64_t j = 0;
  for (; j + kLanes <= N; j += kLanes) {
    const Vec a0 = V::load(l0 + j), a1 = V::load(l1 + j);
    const Vec a2 = V::load(l2 + j), a3 = V::load(l3 + j);
    const Vec wj = V::load(w + j), bj = V::load(gb + j);
    V::store(g0 + j, V::load(g0 + j) + (f0 * wj + w0 * bj));
    V::store(g1 + j, V::load(g1 + j) + (f1 * wj + w1 * bj));
    V::store(g2 + j, V::load(g2 + j) + (f2 * wj + w2 * bj));
    V::store(g3 + j, V::load(g3 + j) + (f3 * wj + w3 * bj));
    V::store(gp + j, V::load(gp + j) + ((f0 * a0 + f1 * a1) + (f2 * a2 + f3 * a3)));
    d0 += bj * a0;
    d1 += bj * a1;
    d2 += bj * a2;
    d3 += bj * a3;
  }
  T sums[kLinkBlock] = {V::sum(d0), V::sum(d1), V::sum(d2), V::sum(d3)};
  for (; j < N; ++j) {
    g0[j] += f0 * w[j] + w0 * gb[j];
    g1[j] += f1 * w[j] + w1 * gb[j];
    g2[j] += f2 * w[j] + w2 * gb[j];
    g3[j] += f3 * w[j] + w3 * gb[j];
    gp[j] += (f0 * l0[j] + f1 * l1[j]) + (f2 * l2[j] + f3 * l3[j]);
    sums[0] += gb[j] * l0[j];
    sums[1] += gb[j] * l1[j];
    sums[2] += gb[j] * l2[j];
    sums[3] += gb[j] * l3[j];
  }
  for (int64_t k = 0; k < kLinkBlock; ++k) gp[i0 + k] += sums[k];
}

// (B8) for `count` (at most kLinkBlock) rows i0.. of G, `gl` (count, N), and of
// L_{t-1}, `l` (count, N): with L_t(i, j) = (1 - w_i - w_j) L(i, j) + w_i p_j, the
// gradient at the write weighting `g_w` gains sum_j G(i, j) (p_j - L(i, j)) at i and
// -G(i, j) L(i, j) at j, and the one at the precedence `g_prec` gains G(i, j) w_i at j.
// A full block loads and stores `g_w` and `g_prec` once per four rows, and its four
// sums at i are independent chains.
template <typename T>
inline void link_write_backward_block(const T* gl, const T* l, const T* precedence,
                                      const T* write, int64_t i0, int64_t count, int64_t N,
                                      T* g_w, T* g_prec) {
  if (count < kLinkBlock) {
    for (int64_t k = 0; k < count; ++k) {
      const T* glk = gl + k * N;
      const T* lk = l + k * N;
      const T wi = write[i0 + k];
      T acc = 0;
      for (int64_t j = 0; j < N; ++j) {
        acc += glk[j] * (precedence[j] - lk[j]);
        g_w[j] -= glk[j] * lk[j];
        g_prec[j] += glk[j] * wi;
      }
      g_w[i0 + k] += acc;
    }
    return;
  }
  using V = Vector<T>;
  using Vec = typename V::Type;
  constexpr int64_t kLanes = V::kLanes;
  const T w0 = write[i0], w1 = write[i0 + 1], w2 = write[i0 + 2], w3 = write[i0 + 3];
  const T *g0 = gl, *g1 = gl + N, *g2 = gl + 2 * N, *g3 = gl + 3 * N;
  const T *l0 = l, *l1 = l + N, *l2 = l + 2 * N, *l3 = l + 3 * N;
  Vec s0 = {}, s1 = {}, s2 = {}, s3 = {};
  int64_t j = 0;
  for (; j + kLanes <= N; j += kLanes) {
    const Vec a0 = V::load(g0 + j), a1 = V::load(g1 + j);
    const Vec a2 = V::load(g2 + j), a3 = V::load(g3 + j);
    const Vec m0 = V::load(l0 + j), m1 = V::load(l1 + j);
    const Vec m2 = V::load(l2 + j), m3 = V::load(l3 + j);
    const Vec pj = V::load(precedence + j);
    s0 += a0 * (pj - m0);
    s1 += a1 * (pj - m1);
    s2 += a2 * (pj - m2);
    s3 += a3 * (pj - m3);
    V::store(g_w + j, V::load(g_w + j) - ((a0 * m0 + a1 * m1) + (a2 * m2 + a3 * m3)));
    V::store(g_prec + j, V::load(g_prec + j) + ((a0 * w0 + a1 * w1) + (a2 * w2 + a3 * w3)));
  }
  T sums[kLinkBlock] = {V::sum(s0), V::sum(s1), V::sum(s2), V::sum(s3)};
  for (; j < N; ++j) {
    const T p = precedence[j];
    sums[0] += g0[j] * (p - l0[j]);
    sums[1] += g1[j] * (p - l1[j]);
    sums[2] += g2[j] * (p - l2[j]);
    sums[3] += g3[j] * (p - l3[j]);
    g_w[j] -= (g0[j] * l0[j] + g1[j] * l1[j]) + (g2[j] * l2[j] + g3[j] * l3[j]);
    g_prec[j] += (g0[j] * w0 + g1[j] * w1) + (g2[j] * w2 + g3[j] * w3);
  }
  for (int64_t k = 0; k < kLinkBlock; ++k) g_w[i0 + k] += sums[k];
}

template <typename T>
void forward_item(const Sizes& z, T read_eps, T write_eps, T usage_eps, const T* x,
                  const T* mem, const T* usage, const T* link, const T* precedence,
                  const T* prev_read, const T* prev_write, T* reads, T* new_mem, T* new_usage,
                  T* new_link, T* new_precedence, T* read, T* write, T* rows,
                  int64_t* free_list, std::vector<T>& scratch) {
  const int64_t N = z.slots, W = z.width, R = z.reads;
  const Interface<T> in(z, x);
  scratch.resize(N * W + W);
  T* columns = scratch.data();
  T* erase = columns + N * W;
  for (int64_t j = 0; j < W; ++j) erase[j] = sigmoid(in.erase_raw[j]);
  auto row = [&](int64_t k) { return rows + k * N; };
  auto head_row = [&](int64_t r, int64_t k) { return rows + (kShared + r * kPerHead + k) * N; };

  // (F2)-(F3) Retention and usage.
  T* psi = row(kPsi);
  std::fill(psi, psi + N, T(1));
  for (int64_t r = 0; r < R; ++r) {
    T* kept = head_row(r, kKept);
    const T f = in.free[r];
    const T* w = prev_read + r * N;
    for (int64_t i = 0; i < N; ++i) {
      kept[i] = T(1) - f * w[i];
      psi[i] *= kept[i];
    }
  }
  T* usage_hat = row(kUsageHat);
  for (int64_t i = 0; i < N; ++i) {
    usage_hat[i] = (usage[i] + prev_write[i]) - usage[i] * prev_write[i];
    new_usage[i] = usage_hat[i] * psi[i];
  }

  // (F4) Allocation: a stable ascending sort, exclusive products in log space.
  std::iota(free_list, free_list + N, int64_t(0));
  std::stable_sort(free_list, free_list + N,
                   [&](int64_t a, int64_t b) { return new_usage[a] < new_usage[b]; });
  T* sorted = row(kSorted);
  T* exclusive = row(kExclusive);
  T* sorted_alloc = row(kSortedAlloc);
  T* allocation = row(kAllocation);
  for (int64_t j = 0; j < N; ++j) sorted[j] = new_usage[free_list[j]];
  // exclusive[j] = exp(sum_{k<j} log max(sorted[k], eps)): the logs and the exps are
  // vector loops, the running sum between them a scalar one.
#pragma omp simd
  for (int64_t j = 0; j < N; ++j) exclusive[j] = log_value(std::max(sorted[j], usage_eps));
  T log_sum = 0;
  for (int64_t j = 0; j < N; ++j) {
    const T log_j = exclusive[j];
    exclusive[j] = log_sum;
    log_sum += log_j;
  }
#pragma omp simd
  for (int64_t j = 0; j < N; ++j) {
    exclusive[j] = exp_value(exclusive[j]);
    sorted_alloc[j] = (T(1) - sorted[j]) * exclusive[j];
  }
  for (int64_t j = 0; j < N; ++j) allocation[free_list[j]] = sorted_alloc[j];

  // (F5)-(F6) Write content on M_{t-1} and the write weighting.
  transpose(mem, N, W, columns);
  row_norms_of(columns, N, W, row(kNormsPrev));
  T* write_content = row(kWriteContent);
  content_forward(in.key(z, x, R), in.strength[R], write_eps, columns, row(kNormsPrev), N, W,
                  row(kWriteSim), row(kWriteDen), write_content);
  T* mixed = row(kMixed);
  T write_sum = 0;
  for (int64_t i = 0; i < N; ++i) {
    mixed[i] = write_content[i] + in.allocation_gate * (allocation[i] - write_content[i]);
    write[i] = in.write_gate * mixed[i];
    write_sum += write[i];
  }

  // (F7) Erase and add: M_t = M_{t-1} + w o (1 v^T - M_{t-1} o 1 e^T).
  for (int64_t i = 0; i < N; ++i) {
    const T wi = write[i];
    const T* m = mem + i * W;
    T* out = new_mem + i * W;
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) out[j] = m[j] + wi * (in.values[j] - m[j] * erase[j]);
  }
  // The same update on the columns of M_{t-1}, for the read lookup on M_t (F10): a
  // contiguous loop, where transposing M_t would read it with a stride.
  for (int64_t j = 0; j < W; ++j) {
    T* column = columns + j * N;
    const T v = in.values[j], e = erase[j];
#pragma omp simd
    for (int64_t i = 0; i < N; ++i) column[i] = column[i] + write[i] * (v - column[i] * e);
  }

  // (F8)-(F9) Link, precedence, and the directions b = w^r L_t, f = w^r L_t^T, four rows
  // of L_t at a time (directions_block).
  std::fill(read, read + R * N, T(0));  // holds b until (F11)
  for (int64_t i0 = 0; i0 < N; i0 += kLinkBlock) {
    const int64_t count = std::min(kLinkBlock, N - i0);
    for (int64_t i = i0; i < i0 + count; ++i) {
      link_row(link + i * N, write, precedence, N, i, new_link + i * N);
    }
    for (int64_t r = 0; r < R; ++r) {
      directions_block(new_link + i0 * N, prev_read + r * N, i0, count, N, read + r * N,
                       head_row(r, kForward));
    }
  }
  for (int64_t i = 0; i < N; ++i) new_precedence[i] = write[i] + (T(1) - write_sum) * precedence[i];

  // (F10)-(F12) Read content on M_t, read weightings, reads.
  row_norms_of(columns, N, W, row(kNormsNew));
  for (int64_t r = 0; r < R; ++r) {
    T* content = head_row(r, kReadContent);
    content_forward(in.key(z, x, r), in.strength[r], read_eps, columns, row(kNormsNew), N, W,
                    head_row(r, kReadSim), head_row(r, kReadDen), content);
    T* backward = head_row(r, kBackward);
    const T* forward = head_row(r, kForward);
    T* w = read + r * N;
    const T* pi = in.modes.data() + 3 * r;
    for (int64_t i = 0; i < N; ++i) {
      backward[i] = w[i];
      w[i] = pi[0] * backward[i] + pi[1] * content[i] + pi[2] * forward[i];
    }
    read_rows(w, new_mem, N, W, reads + r * W);
  }
}

// Gradients arriving at one batch item's seven outputs; null where absent.
template <typename T>
struct Incoming {
  const T *reads, *memory, *usage, *link, *precedence, *read, *write;
};

// Gradients at one batch item's interface and seven state inputs.
template <typename T>
struct Outgoing {
  T *interface, *memory, *usage, *link, *precedence, *read, *write;  // link null: not wanted
};

template <typename T>
void backward_item(const Sizes& z, T usage_eps, const Incoming<T>& g, const T* x, const T* mem,
                   const T* usage, const T* link, const T* precedence, const T* prev_read,
                   const T* prev_write, const T* new_mem, const T* read, const T* write,
                   const T* rows, const int64_t* free_list, const Outgoing<T>& out,
                   std::vector<T>& scratch) {
  const int64_t N = z.slots, W = z.width, R = z.reads;
  const Interface<T> in(z, x);
  auto row = [&](int64_t k) { return rows + k * N; };
  auto head_row = [&](int64_t r, int64_t k) { return rows + (kShared + r * kPerHead + k) * N; };
  scratch.assign(N * W + 3 * R * N + (6 + 2 * kLinkBlock) * N + 3 * W, T(0));
  T* g_mem = scratch.data();         // at M_t, (N, W)
  T* g_read = g_mem + N * W;         // at w^r, (R, N)
  T* g_back = g_read + R * N;        // at b, (R, N)
  T* g_fwd = g_back + R * N;         // at f, (R, N)
  T* g_w = g_fwd + R * N;            // at w, (N)
  T* g_norms = g_w + N;              // at the row norms, (N)
  T* lt = g_norms + N;               // a block of rows of L_t, (kLinkBlock, N)
  T* gl = lt + kLinkBlock * N;       // the same rows of G, (kLinkBlock, N)
  T* g_alloc = gl + kLinkBlock * N;  // (N)
  T* g_usage = g_alloc + N;          // (N)
  T* g_sorted = g_usage + N;         // (N)
  T* g_cw = g_sorted + N;            // (N)
  T* erase = g_cw + N;               // (W)
  T* g_erase = erase + W;            // (W)
  T* g_values = g_erase + W;         // (W)
  for (int64_t j = 0; j < W; ++j) erase[j] = sigmoid(in.erase_raw[j]);
  T* g_x = out.interface;
  T* g_prev_read = out.read;
  std::fill(g_prev_read, g_prev_read + R * N, T(0));

  // (B12) Reads.
  if (g.memory != nullptr) std::copy(g.memory, g.memory + N * W, g_mem);
  if (g.read != nullptr) std::copy(g.read, g.read + R * N, g_read);
  if (g.reads != nullptr) {
    for (int64_t r = 0; r < R; ++r) {
      const T* gr = g.reads + r * W;
      const T* w = read + r * N;
      for (int64_t i = 0; i < N; ++i) {
        g_read[r * N + i] += dot(gr, new_mem + i * W, W);
        const T wi = w[i];
        T* gm = g_mem + i * W;
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) gm[j] += wi * gr[j];
      }
    }
  }

  // (B11) Read modes and directions; (B10) read content on M_t.
  std::vector<T> g_modes(3 * R);
  T* g_content = g_cw;  // borrowed, per head, before (B6) needs it
  for (int64_t r = 0; r < R; ++r) {
    const T* gr = g_read + r * N;
    const T* pi = in.modes.data() + 3 * r;
    const T* content = head_row(r, kReadContent);
    g_modes[3 * r] = dot(gr, head_row(r, kBackward), N);
    g_modes[3 * r + 1] = dot(gr, content, N);
    g_modes[3 * r + 2] = dot(gr, head_row(r, kForward), N);
    for (int64_t i = 0; i < N; ++i) {
      g_back[r * N + i] = pi[0] * gr[i];
      g_content[i] = pi[1] * gr[i];
      g_fwd[r * N + i] = pi[2] * gr[i];
    }
    const T* key = in.key(z, x, r);
    const T grad_beta = content_backward(
        g_content, content, head_row(r, kReadSim), head_row(r, kReadDen), in.strength[r], key,
        std::sqrt(dot(key, key, W)), new_mem, row(kNormsNew), N, W, g_x + r * (W + 1), g_mem,
        g_norms);
    g_x[r * (W + 1) + W] = grad_beta * softplus_slope(x[r * (W + 1) + W]);
  }
  add_row_norm_gradients(g_norms, new_mem, row(kNormsNew), N, W, g_mem);

  // (B9)-(B8) Directions, link and precedence, a block of rows i of L_t and of G at a
  // time (directions_backward_block, link_write_backward_block):
  // L_t(i, j) = (1 - w_i - w_j) L(i, j) + w_i p_j, and G = g_{L_t} + g_f^T w^r + w^{r T} g_b,
  // both with a zero diagonal.
  T* g_prec = out.precedence;
  std::fill(g_prec, g_prec + N, T(0));
  for (int64_t i0 = 0; i0 < N; i0 += kLinkBlock) {
    const int64_t count = std::min(kLinkBlock, N - i0);
    for (int64_t k = 0; k < count; ++k) {
      const int64_t i = i0 + k;
      const T wi = write[i];
      const T* l = link + i * N;
      T* ltk = lt + k * N;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) ltk[j] = (T(1) - wi - write[j]) * l[j] + wi * precedence[j];
      ltk[i] = 0;
      if (g.link != nullptr) {
        std::copy(g.link + i * N, g.link + (i + 1) * N, gl + k * N);
      } else {
        std::fill(gl + k * N, gl + (k + 1) * N, T(0));
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      directions_backward_block(lt, prev_read + r * N, g_back + r * N, g_fwd + r * N, i0, count,
                                N, gl, g_prev_read + r * N);
    }
    for (int64_t k = 0; k < count; ++k) gl[k * N + i0 + k] = 0;
    link_write_backward_block(gl, link + i0 * N, precedence, write, i0, count, N, g_w, g_prec);
    if (out.link != nullptr) {
      for (int64_t k = 0; k < count; ++k) {
        const int64_t i = i0 + k;
        const T wi = write[i];
        const T* glk = gl + k * N;
        T* gl_prev = out.link + i * N;
#pragma omp simd
        for (int64_t j = 0; j < N; ++j) gl_prev[j] = glk[j] * (T(1) - wi - write[j]);
        gl_prev[i] = 0;
      }
    }
  }
  if (g.precedence != nullptr) {
    T write_sum = 0, gp_dot_p = 0;
    for (int64_t i = 0; i < N; ++i) {
      write_sum += write[i];
      gp_dot_p += g.precedence[i] * precedence[i];
    }
    for (int64_t i = 0; i < N; ++i) {
      g_prec[i] += (T(1) - write_sum) * g.precedence[i];
      g_w[i] += g.precedence[i] - gp_dot_p;
    }
  }

  // (B7) Erase and add.
  T* g_prev_mem = out.memory;
  erase_add_backward(g_mem, mem, write, erase, in.values, N, W, g_w, g_erase, g_values,
                     g_prev_mem);
  if (g.write != nullptr)
    for (int64_t i = 0; i < N; ++i) g_w[i] += g.write[i];

  // (B6) Write weighting.
  const T* mixed = row(kMixed);
  const T* allocation = row(kAllocation);
  const T* write_content = row(kWriteContent);
  const T ga = in.allocation_gate, gw = in.write_gate;
  T g_write_gate = 0, g_allocation_gate = 0;
  for (int64_t i = 0; i < N; ++i) {
    g_write_gate += g_w[i] * mixed[i];
    const T gq = gw * g_w[i];
    g_allocation_gate += gq * (allocation[i] - write_content[i]);
    g_alloc[i] = ga * gq;
    g_cw[i] = (T(1) - ga) * gq;
  }

  // (B5) Write content on M_{t-1}.
  std::fill(g_norms, g_norms + N, T(0));
  const T* write_key = in.key(z, x, R);
  const T g_write_beta = content_backward(
      g_cw, write_content, row(kWriteSim), row(kWriteDen), in.strength[R], write_key,
      std::sqrt(dot(write_key, write_key, W)), mem, row(kNormsPrev), N, W, g_x + R * (W + 1),
      g_prev_mem, g_norms);
  g_x[R * (W + 1) + W] = g_write_beta * softplus_slope(x[R * (W + 1) + W]);
  add_row_norm_gradients(g_norms, mem, row(kNormsPrev), N, W, g_prev_mem);

  // (B4) Allocation; the sums over k > j run from the back.
  const T* sorted = row(kSorted);
  const T* exclusive = row(kExclusive);
  const T* sorted_alloc = row(kSortedAlloc);
  T* later = g_usage;  // borrowed: later_j = sum_{k > j} g~_k a~_k
  for (int64_t j = 0; j < N; ++j) g_sorted[j] = g_alloc[free_list[j]];  // g~
  T running = 0;
  for (int64_t j = N - 1; j >= 0; --j) {
    later[j] = running;
    running += g_sorted[j] * sorted_alloc[j];
  }
#pragma omp simd
  for (int64_t j = 0; j < N; ++j) {
    const T from_later = sorted[j] >= usage_eps ? later[j] / std::max(sorted[j], usage_eps) : T(0);
    g_sorted[j] = from_later - exclusive[j] * g_sorted[j];
  }
  for (int64_t j = 0; j < N; ++j) g_usage[free_list[j]] = g_sorted[j];
  if (g.usage != nullptr)
    for (int64_t i = 0; i < N; ++i) g_usage[i] += g.usage[i];

  // (B3) Usage; (B2) retention.
  const T* psi = row(kPsi);
  const T* usage_hat = row(kUsageHat);
  T* g_psi = g_sorted;  // reused
  for (int64_t i = 0; i < N; ++i) {
    const T g_hat = g_usage[i] * psi[i];
    g_psi[i] = g_usage[i] * usage_hat[i];
    out.usage[i] = g_hat * (T(1) - prev_write[i]);
    out.write[i] = g_hat * (T(1) - usage[i]);
  }
  T* g_gates = g_x + z.gates;
  for (int64_t r = 0; r < R; ++r) {
    const T* w = prev_read + r * N;
    T g_free = 0;
    for (int64_t i = 0; i < N; ++i) {
      T others = g_psi[i];
      for (int64_t h = 0; h < R; ++h)
        if (h != r) others *= head_row(h, kKept)[i];
      g_free -= others * w[i];
      g_prev_read[r * N + i] -= in.free[r] * others;
    }
    g_gates[2 * W + r] = g_free * in.free[r] * (T(1) - in.free[r]);
  }

  // (B1) The remaining constraints, back to the raw interface.
  for (int64_t j = 0; j < W; ++j) {
    g_gates[j] = g_erase[j] * erase[j] * (T(1) - erase[j]);
    g_gates[W + j] = g_values[j];
  }
  g_gates[2 * W + R] = g_allocation_gate * ga * (T(1) - ga);
  g_gates[2 * W + R + 1] = g_write_gate * gw * (T(1) - gw);
  for (int64_t r = 0; r < R; ++r) {
    const T* pi = in.modes.data() + 3 * r;
    const T* gm = g_modes.data() + 3 * r;
    const T mean = pi[0] * gm[0] + pi[1] * gm[1] + pi[2] * gm[2];
    for (int64_t m = 0; m < 3; ++m) g_x[z.modes + 3 * r + m] = pi[m] * (gm[m] - mean);
  }
}

template <typename T>
T* item_ptr(const at::Tensor& t, int64_t b) {
  return t.defined() ? t.data_ptr<T>() + b * (t.numel() / t.size(0)) : nullptr;
}

// `given` where it can hold a link matrix (a contiguous (B, N, N) tensor of the type of
// `like`), else a new tensor.
at::Tensor link_buffer(const at::Tensor& given, const at::Tensor& like, int64_t B, int64_t N) {
  const bool usable = given.defined() && given.is_contiguous() &&
                      given.scalar_type() == like.scalar_type() &&
                      given.sizes() == at::IntArrayRef({B, N, N});
  return usable ? given : at::empty({B, N, N}, like.options());
}

}  // namespace

namespace nma_native {

// Returns {reads (B, R W), memory (B, N, W), usage (B, N), link (B, N, N),
// precedence (B, N), read_weights (B, R, N), write_weights (B, 1, N)} and, for
// dnc_backward, {rows (B, kShared + kPerHead R, N), free_list (B, N) int64}.
std::vector<at::Tensor> dnc_forward(const at::Tensor& interface_in, const at::Tensor& memory_in,
                                    const at::Tensor& usage_in, const at::Tensor& link_in,
                                    const at::Tensor& precedence_in, const at::Tensor& read_in,
                                    const at::Tensor& write_in, double read_eps,
                                    double write_eps, double usage_eps) {
  return dnc_forward_into(interface_in, memory_in, usage_in, link_in, precedence_in, read_in,
                          write_in, read_eps, write_eps, usage_eps, at::Tensor());
}

// dnc_forward, writing the new link matrix into `link_out` (B, N, N) where it is defined
// (of the memory's type, contiguous, not the input link); else into a new tensor.
std::vector<at::Tensor> dnc_forward_into(
    const at::Tensor& interface_in, const at::Tensor& memory_in, const at::Tensor& usage_in,
    const at::Tensor& link_in, const at::Tensor& precedence_in, const at::Tensor& read_in,
    const at::Tensor& write_in, double read_eps, double write_eps, double usage_eps,
    const at::Tensor& link_out) {
  TORCH_CHECK(memory_in.device().is_cpu(), "dnc_forward runs on the CPU");
  const at::Tensor memory = memory_in.contiguous();
  const auto dtype = memory.scalar_type();
  auto as = [&](const at::Tensor& t) { return t.to(dtype).contiguous(); };
  const at::Tensor interface = as(interface_in), usage = as(usage_in), link = as(link_in),
                   precedence = as(precedence_in), prev_read = as(read_in),
                   prev_write = as(write_in);
  const Sizes z = sizes_of(interface, memory, prev_read.size(1));
  const int64_t B = z.batch, N = z.slots, W = z.width, R = z.reads;
  auto options = memory.options();
  at::Tensor reads = at::empty({B, R * W}, options);
  at::Tensor new_memory = at::empty({B, N, W}, options);
  at::Tensor new_usage = at::empty({B, N}, options);
  at::Tensor new_link = link_buffer(link_out, memory, B, N);
  at::Tensor new_precedence = at::empty({B, N}, options);
  at::Tensor read = at::empty({B, R, N}, options);
  at::Tensor write = at::empty({B, 1, N}, options);
  at::Tensor rows = at::empty({B, z.rows, N}, options);
  at::Tensor free_list = at::empty({B, N}, options.dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(dtype, "dnc_forward", [&] {
    using T = scalar_t;
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> scratch;
      for (int64_t b = begin; b < end; ++b) {
        forward_item<T>(z, T(read_eps), T(write_eps), T(usage_eps), item_ptr<T>(interface, b),
                        item_ptr<T>(memory, b), item_ptr<T>(usage, b), item_ptr<T>(link, b),
                        item_ptr<T>(precedence, b), item_ptr<T>(prev_read, b),
                        item_ptr<T>(prev_write, b), item_ptr<T>(reads, b),
                        item_ptr<T>(new_memory, b), item_ptr<T>(new_usage, b),
                        item_ptr<T>(new_link, b), item_ptr<T>(new_precedence, b),
                        item_ptr<T>(read, b), item_ptr<T>(write, b), item_ptr<T>(rows, b),
                        free_list.data_ptr<int64_t>() + b * N, scratch);
      }
    });
  });
  return {reads, new_memory, new_usage, new_link, new_precedence, read, write, rows, free_list};
}

// Returns the gradients at dnc_forward's inputs {interface, memory, usage, link (an empty
// placeholder unless link_wanted), precedence, read_weights, write_weights}.
std::vector<at::Tensor> dnc_backward(
    const std::optional<at::Tensor>& g_reads, const std::optional<at::Tensor>& g_memory,
    const std::optional<at::Tensor>& g_usage, const std::optional<at::Tensor>& g_link,
    const std::optional<at::Tensor>& g_precedence, const std::optional<at::Tensor>& g_read,
    const std::optional<at::Tensor>& g_write, const at::Tensor& interface_in,
    const at::Tensor& memory_in, const at::Tensor& usage_in, const at::Tensor& link_in,
    const at::Tensor& precedence_in, const at::Tensor& read_in, const at::Tensor& write_in,
    const at::Tensor& new_memory, const at::Tensor& read, const at::Tensor& write,
    const at::Tensor& rows, const at::Tensor& free_list, double usage_eps, bool link_wanted) {
  return dnc_backward_into(g_reads, g_memory, g_usage, g_link, g_precedence, g_read, g_write,
                           interface_in, memory_in, usage_in, link_in, precedence_in, read_in,
                           write_in, new_memory, read, write, rows, free_list, usage_eps,
                           link_wanted, at::Tensor());
}

// dnc_backward, writing the link gradient into `link_out` (B, N, N) where it is defined
// (float, contiguous). It may be the incoming g_link itself: each row of g_link is read
// before the same row of the result is written, and no other row is read after.
std::vector<at::Tensor> dnc_backward_into(
    const std::optional<at::Tensor>& g_reads, const std::optional<at::Tensor>& g_memory,
    const std::optional<at::Tensor>& g_usage, const std::optional<at::Tensor>& g_link,
    const std::optional<at::Tensor>& g_precedence, const std::optional<at::Tensor>& g_read,
    const std::optional<at::Tensor>& g_write, const at::Tensor& interface_in,
    const at::Tensor& memory_in, const at::Tensor& usage_in, const at::Tensor& link_in,
    const at::Tensor& precedence_in, const at::Tensor& read_in, const at::Tensor& write_in,
    const at::Tensor& new_memory, const at::Tensor& read, const at::Tensor& write,
    const at::Tensor& rows, const at::Tensor& free_list, double usage_eps, bool link_wanted,
    const at::Tensor& link_out) {
  const at::Tensor memory = memory_in.contiguous();
  const auto dtype = memory.scalar_type();
  auto as = [&](const at::Tensor& t) { return t.to(dtype).contiguous(); };
  auto maybe = [&](const std::optional<at::Tensor>& t) {
    return t.has_value() && t->defined() ? as(*t) : at::Tensor();
  };
  const at::Tensor interface = as(interface_in), usage = as(usage_in), link = as(link_in),
                   precedence = as(precedence_in), prev_read = as(read_in),
                   prev_write = as(write_in);
  const at::Tensor gr = maybe(g_reads), gm = maybe(g_memory), gu = maybe(g_usage),
                   gl = maybe(g_link), gp = maybe(g_precedence), grw = maybe(g_read),
                   gww = maybe(g_write);
  const Sizes z = sizes_of(interface, memory, prev_read.size(1));
  const int64_t B = z.batch, N = z.slots, W = z.width, R = z.reads;
  auto options = memory.options();
  at::Tensor out_interface = at::empty({B, z.interface}, options);
  at::Tensor out_memory = at::empty({B, N, W}, options);
  at::Tensor out_usage = at::empty({B, N}, options);
  at::Tensor out_link;
  if (link_wanted) out_link = link_buffer(link_out, memory, B, N);
  at::Tensor out_precedence = at::empty({B, N}, options);
  at::Tensor out_read = at::empty({B, R, N}, options);
  at::Tensor out_write = at::empty({B, 1, N}, options);
  AT_DISPATCH_FLOATING_TYPES(dtype, "dnc_backward", [&] {
    using T = scalar_t;
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> scratch;
      for (int64_t b = begin; b < end; ++b) {
        const Incoming<T> incoming{item_ptr<T>(gr, b),  item_ptr<T>(gm, b),  item_ptr<T>(gu, b),
                                   item_ptr<T>(gl, b),  item_ptr<T>(gp, b),  item_ptr<T>(grw, b),
                                   item_ptr<T>(gww, b)};
        const Outgoing<T> outgoing{
            item_ptr<T>(out_interface, b),  item_ptr<T>(out_memory, b),
            item_ptr<T>(out_usage, b),      item_ptr<T>(out_link, b),
            item_ptr<T>(out_precedence, b), item_ptr<T>(out_read, b),
            item_ptr<T>(out_write, b)};
        backward_item<T>(z, T(usage_eps), incoming, item_ptr<T>(interface, b),
                         item_ptr<T>(memory, b), item_ptr<T>(usage, b), item_ptr<T>(link, b),
                         item_ptr<T>(precedence, b), item_ptr<T>(prev_read, b),
                         item_ptr<T>(prev_write, b), item_ptr<T>(new_memory, b),
                         item_ptr<T>(read, b), item_ptr<T>(write, b), item_ptr<T>(rows, b),
                         free_list.data_ptr<int64_t>() + b * N, outgoing, scratch);
      }
    });
  });
  if (!link_wanted) out_link = at::empty({0}, options);  // a placeholder, never read
  return {out_interface, out_memory, out_usage, out_link, out_precedence, out_read, out_write};
}

// Writes L_t = (F8) of L_{t-1} (`link`, (B, N, N)), the write weighting w_t (`write`,
// (B, 1, N)) and the precedence p_{t-1} (`precedence`, (B, N)) into `out` (B, N, N), as
// dnc_forward computes it: the sequence loop rebuilds the links it did not keep.
void dnc_link_into(const at::Tensor& link, const at::Tensor& write, const at::Tensor& precedence,
                   const at::Tensor& out) {
  TORCH_CHECK(out.is_contiguous() && out.sizes() == link.sizes() &&
                  out.scalar_type() == link.scalar_type(),
              "dnc_link_into writes into a contiguous tensor of the link's type and shape");
  const int64_t B = link.size(0), N = link.size(1);
  AT_DISPATCH_FLOATING_TYPES(link.scalar_type(), "dnc_link_into", [&] {
    using T = scalar_t;
    auto as = [&](const at::Tensor& t) { return t.to(link.scalar_type()).contiguous(); };
    const at::Tensor l_in = link.contiguous(), w = as(write), p = as(precedence);
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const T* l = item_ptr<T>(l_in, b);
        T* o = item_ptr<T>(out, b);
        for (int64_t i = 0; i < N; ++i) {
          link_row(l + i * N, item_ptr<T>(w, b), item_ptr<T>(p, b), N, i, o + i * N);
        }
      }
    });
  });
}

}  // namespace nma_native

TORCH_LIBRARY_FRAGMENT(nma_native, m) {
  m.def("dnc_forward",
        torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(nma_native::dnc_forward)));
  m.def("dnc_backward",
        torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(nma_native::dnc_backward)));
}
