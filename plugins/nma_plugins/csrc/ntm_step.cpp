// One NTM memory step, forward and backward, as two native CPU kernels.
//
// Graves, Wayne & Danihelka (2014), "Neural Turing Machines", arXiv:1410.5401: the
// same step as nma_plugins/memories/ntm_step.py (constraints of section 3.3, content
// addressing eqs. 5-6, interpolation eq. 7, circular shift eq. 8, sharpening eq. 9,
// erase and add eqs. 3-4 with section 3.2's rule for several write heads, read eq. 2)
// and the chain rule written out in that file's docstring and in
// nma_plugins/addressing/{content,ntm}_fused.py. Each batch item is independent, so
// the batch is split across threads; inside an item every loop runs over contiguous
// rows of the memory.
//
// Shapes: B batch, N slots, W slot width, Wh write heads, R read heads, H = Wh + R
// (write heads first), S = 2 R' + 1 shift offsets. Per head the interface holds
// [key (W), strength, gate, shift (S), gamma]; after the H heads, per write head
// [erase (W), add (W)].

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "common.h"
#include "steps.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

namespace {

using namespace nma_native;

// Per-head vectors saved for the backward pass, each of length N.
enum HeadRow : int64_t { kContent, kSimilarity, kDenominator, kGated, kLogQ, kWeights, kRows };
// Per-head scalars saved for the backward pass.
enum HeadScalar : int64_t {
  kStrength,      // beta
  kGate,          // g
  kGamma,         // gamma
  kKeyNorm,       // |k|
  kScale,         // max_i w~(i)
  kLogNorm,       // log sum_j q_j^gamma
  kStrengthSlope, // d beta / d raw strength (softplus')
  kGammaSlope,    // d gamma / d raw gamma (softplus')
  kScalars
};

// padded[p] = values[(p - R) mod N] for p in [0, N + 2R), R <= N: the circular
// shift of eq. (8) then reads contiguous windows of it.
template <typename T>
void circular_pad(const T* values, int64_t n, int64_t r, T* padded) {
  for (int64_t p = 0; p < n + 2 * r; ++p) {
    int64_t from = p - r;
    if (from < 0) from += n;
    else if (from >= n) from -= n;
    padded[p] = values[from];
  }
}

// The rows of one batch item's weightings, split into the write heads' and the read
// heads' tensors; head h < Wh is a write head. A null tensor gives null rows.
template <typename T>
struct Heads {
  T* write;
  T* read;
  int64_t writes, slots;
  T* operator[](int64_t h) const {
    T* base = h < writes ? write : read;
    return base == nullptr ? nullptr : base + (h < writes ? h : h - writes) * slots;
  }
};

struct Sizes {
  int64_t batch, slots, width, writes, reads, heads, shifts, head_size, interface;
};

Sizes sizes_of(const at::Tensor& interface, const at::Tensor& memory, int64_t writes,
               int64_t reads, int64_t shifts) {
  Sizes s{};
  s.batch = memory.size(0);
  s.slots = memory.size(1);
  s.width = memory.size(2);
  s.writes = writes;
  s.reads = reads;
  s.heads = writes + reads;
  s.shifts = shifts;
  s.head_size = s.width + 3 + shifts;
  s.interface = s.heads * s.head_size + 2 * writes * s.width;
  TORCH_CHECK(interface.dim() == 2 && interface.size(0) == s.batch &&
                  interface.size(1) == s.interface,
              "ntm_step: interface has shape ", interface.sizes(), ", expected (", s.batch,
              ", ", s.interface, ")");
  TORCH_CHECK(shifts % 2 == 1 && (shifts - 1) / 2 <= s.slots,
              "ntm_step: the shift size must be odd and reach at most N slots");
  return s;
}

template <typename T>
void forward_item(const Sizes& z, T eps, const T* x, const T* mem, Heads<const T> prev,
                  T* reads, T* new_mem, Heads<T> new_weights, T* rows, T* scalars, T* shift,
                  T* erase, T* add, T* row_norms) {
  const int64_t N = z.slots, W = z.width, S = z.shifts, R = (S - 1) / 2;
  const T tiny = std::numeric_limits<T>::min();
  std::vector<T> buffer(N + 2 * R + N * W);
  T* padded = buffer.data();
  T* columns = padded + N + 2 * R;
  transpose(mem, N, W, columns);
  row_norms_of(columns, N, W, row_norms);
  for (int64_t h = 0; h < z.heads; ++h) {
    const T* p = x + h * z.head_size;
    const T* key = p;
    T* row = rows + h * kRows * N;
    T* content = row + kContent * N;
    T* similarity = row + kSimilarity * N;
    T* denominator = row + kDenominator * N;
    T* gated = row + kGated * N;
    T* log_q = row + kLogQ * N;
    T* weights = row + kWeights * N;
    T* sc = scalars + h * kScalars;
    T* s = shift + h * S;

    const T beta = softplus(p[W]);
    const T gate = sigmoid(p[W + 1]);
    const T gamma = T(1) + softplus(p[W + 2 + S]);
    T shift_max = p[W + 2];
    for (int64_t k = 1; k < S; ++k) shift_max = std::max(shift_max, p[W + 2 + k]);
    T shift_sum = 0;
    for (int64_t k = 0; k < S; ++k) shift_sum += (s[k] = exp_value(p[W + 2 + k] - shift_max));
    for (int64_t k = 0; k < S; ++k) s[k] /= shift_sum;

    // Content addressing, eqs. (5)-(6).
    const T key_norm = content_forward(key, beta, eps, columns, row_norms, N, W, similarity,
                                       denominator, content);

    // Interpolation (eq. 7), circular shift (eq. 8), sharpening (eq. 9).
    const T* before = prev[h];
#pragma omp simd
    for (int64_t i = 0; i < N; ++i) gated[i] = before[i] + gate * (content[i] - before[i]);
    // w~(i) = sum_k s(k) w_g((i - k + R) mod N) = sum_k s(k) padded(i - k + 2R)
    circular_pad(gated, N, R, padded);
    std::fill(log_q, log_q + N, T(0));
    for (int64_t k = 0; k < S; ++k) {
      const T sk = s[k];
      const T* window = padded + 2 * R - k;
#pragma omp simd
      for (int64_t i = 0; i < N; ++i) log_q[i] += sk * window[i];
    }
    T scale = 0;
#pragma omp simd reduction(max : scale)
    for (int64_t i = 0; i < N; ++i) scale = std::max(scale, log_q[i]);
#pragma omp simd
    for (int64_t i = 0; i < N; ++i) log_q[i] = log_value(log_q[i] / scale + tiny);
#pragma omp simd
    for (int64_t i = 0; i < N; ++i) weights[i] = exp_value(gamma * log_q[i]);
    const T norm = normalize(weights, N);
    std::copy(weights, weights + N, new_weights[h]);

    sc[kStrength] = beta;
    sc[kGate] = gate;
    sc[kGamma] = gamma;
    sc[kKeyNorm] = key_norm;
    sc[kScale] = scale;
    sc[kLogNorm] = log_value(norm);
    sc[kStrengthSlope] = softplus_slope(p[W]);
    sc[kGammaSlope] = softplus_slope(p[W + 2 + S]);
  }

  // Erase and add, eqs. (3)-(4): M_t = M_{t-1} o prod_h (1 - w_h e_h^T) + sum_h w_h a_h^T.
  const T* writes_raw = x + z.heads * z.head_size;
  for (int64_t h = 0; h < z.writes; ++h) {
    for (int64_t j = 0; j < W; ++j) {
      erase[h * W + j] = sigmoid(writes_raw[h * 2 * W + j]);
      add[h * W + j] = std::tanh(writes_raw[h * 2 * W + W + j]);
    }
  }
  for (int64_t i = 0; i < N; ++i) {
    T* out = new_mem + i * W;
    const T* in = mem + i * W;
    if (z.writes == 1) {
      const T w = new_weights[0][i];
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) out[j] = in[j] * (T(1) - w * erase[j]) + w * add[j];
      continue;
    }
    std::copy(in, in + W, out);
    for (int64_t h = 0; h < z.writes; ++h) {
      const T w = new_weights[h][i];
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) out[j] *= T(1) - w * erase[h * W + j];
    }
    for (int64_t h = 0; h < z.writes; ++h) {
      const T w = new_weights[h][i];
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) out[j] += w * add[h * W + j];
    }
  }
  // Read, eq. (2), from the memory just written.
  for (int64_t r = 0; r < z.reads; ++r) read_rows(new_weights[z.writes + r], new_mem, N, W, reads + r * W);
}

template <typename T>
void backward_item(const Sizes& z, const T* grad_reads, const T* grad_new_mem,
                   Heads<const T> grad_new_weights, const T* mem, Heads<const T> prev,
                   const T* new_mem, const T* rows, const T* scalars, const T* shift,
                   const T* erase, const T* add, const T* row_norms, const T* x, T* grad_x,
                   T* grad_mem, Heads<T> grad_prev, std::vector<T>& scratch) {
  const int64_t N = z.slots, W = z.width, S = z.shifts, R = (S - 1) / 2, H = z.heads;
  scratch.assign(N * W + H * N + 3 * N + z.writes + N + 2 * R, T(0));
  T* padded = scratch.data() + N * W + H * N + 3 * N + z.writes;  // (N + 2R)
  T* G = scratch.data();         // dL/dM_t, (N, W)
  T* grad_w = G + N * W;         // dL/dw for every head, (H, N)
  T* grad_shifted = grad_w + H * N;
  T* grad_gated = grad_shifted + N;
  T* grad_row_norms = grad_gated + N;
  T* keep_others = grad_row_norms + N;  // K_{-h}(i, j) for each write head h

  if (grad_new_mem != nullptr) std::copy(grad_new_mem, grad_new_mem + N * W, G);
  for (int64_t h = 0; h < H; ++h)
    if (grad_new_weights[h] != nullptr) std::copy(grad_new_weights[h], grad_new_weights[h] + N, grad_w + h * N);
  auto head_weights = [&](int64_t h) { return rows + (h * kRows + kWeights) * N; };

  // Read: dL/dw_r(i) = dL/dr . M_t(i), G(i) += w_r(i) dL/dr.
  if (grad_reads != nullptr) {
    for (int64_t r = 0; r < z.reads; ++r) {
      const T* g = grad_reads + r * W;
      const T* w = head_weights(z.writes + r);
      T* gw = grad_w + (z.writes + r) * N;
      for (int64_t i = 0; i < N; ++i) {
        gw[i] += dot(g, new_mem + i * W, W);
        const T wi = w[i];
        T* Gi = G + i * W;
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) Gi[j] += wi * g[j];
      }
    }
  }

  // Write: M_t = M_{t-1} o K + sum_h w_h a_h^T with K = prod_h (1 - w_h e_h^T).
  T* grad_writes = grad_x + H * z.head_size;  // per write head [erase (W), add (W)]
  for (int64_t h = 0; h < z.writes; ++h) std::fill(grad_writes + h * 2 * W, grad_writes + (h + 1) * 2 * W, T(0));
  if (z.writes == 1) {
    erase_add_backward(G, mem, head_weights(0), erase, add, N, W, grad_w, grad_writes,
                       grad_writes + W, grad_mem);
  } else {
    for (int64_t i = 0; i < N; ++i) {
      for (int64_t j = 0; j < W; ++j) {
        const T g = G[i * W + j];
        const T m = mem[i * W + j];
        T keep = 1;
        for (int64_t h = 0; h < z.writes; ++h) {
          T others = 1;
          for (int64_t o = 0; o < z.writes; ++o)
            if (o != h) others *= T(1) - head_weights(o)[i] * erase[o * W + j];
          keep_others[h] = others;
        }
        for (int64_t h = 0; h < z.writes; ++h) keep *= T(1) - head_weights(h)[i] * erase[h * W + j];
        for (int64_t h = 0; h < z.writes; ++h) {
          const T w = head_weights(h)[i];
          const T gmk = g * m * keep_others[h];
          grad_w[h * N + i] += g * add[h * W + j] - gmk * erase[h * W + j];
          grad_writes[h * 2 * W + j] -= w * gmk;          // dL/de_h(j)
          grad_writes[h * 2 * W + W + j] += w * g;        // dL/da_h(j)
        }
        grad_mem[i * W + j] = g * keep;
      }
    }
  }
  for (int64_t h = 0; h < z.writes; ++h) {
    for (int64_t j = 0; j < W; ++j) {
      const T e = erase[h * W + j], a = add[h * W + j];
      grad_writes[h * 2 * W + j] *= e * (T(1) - e);
      grad_writes[h * 2 * W + W + j] *= T(1) - a * a;
    }
  }

  // Addressing, head by head: eqs. (9), (8), (7), then (5)-(6).
  for (int64_t h = 0; h < H; ++h) {
    const T* row = rows + h * kRows * N;
    const T* content = row + kContent * N;
    const T* similarity = row + kSimilarity * N;
    const T* denominator = row + kDenominator * N;
    const T* gated = row + kGated * N;
    const T* log_q = row + kLogQ * N;
    const T* weights = row + kWeights * N;
    const T* sc = scalars + h * kScalars;
    const T* s = shift + h * S;
    const T* before = prev[h];
    const T* key = x + h * z.head_size;
    const T* gw = grad_w + h * N;
    T* gx = grad_x + h * z.head_size;
    const T gamma = sc[kGamma];

    // Sharpening (eq. 9).
    const T mean = dot(gw, weights, N);
    T grad_gamma = 0;
    const T factor = gamma / sc[kScale];
    const T log_norm = sc[kLogNorm];
#pragma omp simd reduction(+ : grad_gamma)
    for (int64_t i = 0; i < N; ++i) {
      const T centred = gw[i] - mean;
      grad_gamma += centred * weights[i] * log_q[i];
      grad_shifted[i] = centred * exp_value((gamma - T(1)) * log_q[i] - log_norm) * factor;
    }
    // Circular shift (eq. 8).
    // dL/ds(k) = sum_i G~(i) w_g((i - k + R) mod N), dL/dw_g(j) = sum_k s(k) G~((j + k - R) mod N)
    T* gs = gx + W + 2;  // dL/ds, turned into dL/d raw shift below
    circular_pad(gated, N, R, padded);
    for (int64_t k = 0; k < S; ++k) gs[k] = dot(grad_shifted, padded + 2 * R - k, N);
    circular_pad(grad_shifted, N, R, padded);
    std::fill(grad_gated, grad_gated + N, T(0));
    for (int64_t k = 0; k < S; ++k) {
      const T sk = s[k];
      const T* window = padded + k;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) grad_gated[j] += sk * window[j];
    }
    // Interpolation (eq. 7).
    const T gate = sc[kGate];
    T grad_gate = 0;
    T* gp = grad_prev[h];
    for (int64_t i = 0; i < N; ++i) {
      grad_gate += grad_gated[i] * (content[i] - before[i]);
      gp[i] = (T(1) - gate) * grad_gated[i];
      grad_gated[i] *= gate;  // now dL/dw_c
    }
    // Content addressing (eqs. 5-6).
    const T grad_beta =
        content_backward(grad_gated, content, similarity, denominator, sc[kStrength], key,
                         sc[kKeyNorm], mem, row_norms, N, W, gx, grad_mem, grad_row_norms);

    // Constraints, back to the raw interface.
    gx[W] = grad_beta * sc[kStrengthSlope];
    gx[W + 1] = grad_gate * gate * (T(1) - gate);
    T mean_s = 0;
    for (int64_t k = 0; k < S; ++k) mean_s += gs[k] * s[k];
    for (int64_t k = 0; k < S; ++k) gs[k] = s[k] * (gs[k] - mean_s);
    gx[W + 2 + S] = grad_gamma * sc[kGammaSlope];
  }
  add_row_norm_gradients(grad_row_norms, mem, row_norms, N, W, grad_mem);
}

}  // namespace

namespace nma_native {

// Returns {reads (B, R W), new_memory (B, N, W), new_read_weights (B, R, N),
// new_write_weights (B, Wh, N), and for ntm_backward: rows (B, H, 6, N), scalars (B, H, 8),
// shift (B, H, S), erase (B, Wh, W), add (B, Wh, W), row_norms (B, N)}.
std::vector<at::Tensor> ntm_forward(const at::Tensor& interface_in, const at::Tensor& memory_in,
                                    const at::Tensor& write_in, const at::Tensor& read_in,
                                    int64_t shifts, double eps) {
  TORCH_CHECK(memory_in.device().is_cpu(), "ntm_forward runs on the CPU");
  const at::Tensor memory = memory_in.contiguous();
  const auto dtype = memory.scalar_type();
  const at::Tensor interface = interface_in.to(dtype).contiguous();
  const at::Tensor write = write_in.to(dtype).contiguous();
  const at::Tensor read = read_in.to(dtype).contiguous();
  const Sizes z = sizes_of(interface, memory, write.size(1), read.size(1), shifts);
  const int64_t B = z.batch, N = z.slots, W = z.width, H = z.heads, Wh = z.writes, R = z.reads;
  auto options = memory.options();
  at::Tensor reads = at::empty({B, R * W}, options);
  at::Tensor new_memory = at::empty({B, N, W}, options);
  at::Tensor new_read = at::empty({B, R, N}, options);
  at::Tensor new_write = at::empty({B, Wh, N}, options);
  at::Tensor rows = at::empty({B, H, kRows, N}, options);
  at::Tensor scalars = at::empty({B, H, kScalars}, options);
  at::Tensor shift = at::empty({B, H, shifts}, options);
  at::Tensor erase = at::empty({B, Wh, W}, options);
  at::Tensor add = at::empty({B, Wh, W}, options);
  at::Tensor row_norms = at::empty({B, N}, options);
  AT_DISPATCH_FLOATING_TYPES(dtype, "ntm_forward", [&] {
    using T = scalar_t;
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        forward_item<T>(
            z, static_cast<T>(eps), interface.data_ptr<T>() + b * z.interface,
            memory.data_ptr<T>() + b * N * W,
            Heads<const T>{write.data_ptr<T>() + b * Wh * N, read.data_ptr<T>() + b * R * N, Wh, N},
            reads.data_ptr<T>() + b * R * W, new_memory.data_ptr<T>() + b * N * W,
            Heads<T>{new_write.data_ptr<T>() + b * Wh * N, new_read.data_ptr<T>() + b * R * N, Wh, N},
            rows.data_ptr<T>() + b * H * kRows * N, scalars.data_ptr<T>() + b * H * kScalars,
            shift.data_ptr<T>() + b * H * shifts, erase.data_ptr<T>() + b * Wh * W,
            add.data_ptr<T>() + b * Wh * W, row_norms.data_ptr<T>() + b * N);
      }
    });
  });
  return {reads, new_memory, new_read, new_write, rows, scalars, shift, erase, add, row_norms};
}

// Returns {grad_interface (B, I), grad_memory (B, N, W), grad_write_weights (B, Wh, N),
// grad_read_weights (B, R, N)}: the gradients at ntm_forward's inputs.
std::vector<at::Tensor> ntm_backward(
    const std::optional<at::Tensor>& grad_reads_in, const std::optional<at::Tensor>& grad_memory_in,
    const std::optional<at::Tensor>& grad_read_in, const std::optional<at::Tensor>& grad_write_in,
    const at::Tensor& interface_in, const at::Tensor& memory_in, const at::Tensor& write_in,
    const at::Tensor& read_in, const at::Tensor& new_memory, const at::Tensor& rows,
    const at::Tensor& scalars, const at::Tensor& shift, const at::Tensor& erase,
    const at::Tensor& add, const at::Tensor& row_norms) {
  const at::Tensor memory = memory_in.contiguous();
  const auto dtype = memory.scalar_type();
  const at::Tensor interface = interface_in.to(dtype).contiguous();
  const at::Tensor write = write_in.to(dtype).contiguous();
  const at::Tensor read = read_in.to(dtype).contiguous();
  const int64_t shifts = shift.size(2);
  const Sizes z = sizes_of(interface, memory, write.size(1), read.size(1), shifts);
  const int64_t B = z.batch, N = z.slots, W = z.width, H = z.heads, Wh = z.writes, R = z.reads;
  auto defined = [&](const std::optional<at::Tensor>& t) {
    return t.has_value() && t->defined() ? t->to(dtype).contiguous() : at::Tensor();
  };
  const at::Tensor grad_reads = defined(grad_reads_in);
  const at::Tensor grad_memory = defined(grad_memory_in);
  const at::Tensor grad_read = defined(grad_read_in);
  const at::Tensor grad_write = defined(grad_write_in);
  auto options = memory.options();
  at::Tensor grad_x = at::empty({B, z.interface}, options);
  at::Tensor grad_mem = at::empty({B, N, W}, options);
  at::Tensor grad_prev_write = at::empty({B, Wh, N}, options);
  at::Tensor grad_prev_read = at::empty({B, R, N}, options);
  AT_DISPATCH_FLOATING_TYPES(dtype, "ntm_backward", [&] {
    using T = scalar_t;
    auto item = [](const at::Tensor& t, int64_t offset) -> const T* {
      return t.defined() ? t.data_ptr<T>() + offset : nullptr;
    };
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> scratch;
      for (int64_t b = begin; b < end; ++b) {
        backward_item<T>(
            z, item(grad_reads, b * R * W), item(grad_memory, b * N * W),
            Heads<const T>{item(grad_write, b * Wh * N), item(grad_read, b * R * N), Wh, N},
            memory.data_ptr<T>() + b * N * W,
            Heads<const T>{write.data_ptr<T>() + b * Wh * N, read.data_ptr<T>() + b * R * N, Wh, N},
            new_memory.data_ptr<T>() + b * N * W, rows.data_ptr<T>() + b * H * kRows * N,
            scalars.data_ptr<T>() + b * H * kScalars, shift.data_ptr<T>() + b * H * shifts,
            erase.data_ptr<T>() + b * Wh * W, add.data_ptr<T>() + b * Wh * W,
            row_norms.data_ptr<T>() + b * N, interface.data_ptr<T>() + b * z.interface,
            grad_x.data_ptr<T>() + b * z.interface, grad_mem.data_ptr<T>() + b * N * W,
            Heads<T>{grad_prev_write.data_ptr<T>() + b * Wh * N,
                     grad_prev_read.data_ptr<T>() + b * R * N, Wh, N},
            scratch);
      }
    });
  });
  return {grad_x, grad_mem, grad_prev_write, grad_prev_read};
}

}  // namespace nma_native

TORCH_LIBRARY_FRAGMENT(nma_native, m) {
  m.def("ntm_forward",
        torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(nma_native::ntm_forward)));
  m.def("ntm_backward",
        torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(nma_native::ntm_backward)));
}
