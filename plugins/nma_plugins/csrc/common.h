// Helpers shared by the native memory steps: activations and content addressing.
//
// Content addressing is Graves, Wayne & Danihelka (2014), arXiv:1410.5401, eqs. (5)-(6)
// (the DNC's content lookup C is the same): K(k, M(i)) = k . M(i) / (|k||M(i)| + eps),
// w(i) = softmax_i(beta K(k, M(i))), with the backward pass written out in
// nma_plugins/addressing/content_fused.py.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "vector_math.h"

namespace nma_native {

template <typename T>
T softplus(T x) {  // torch's softplus with beta 1 and threshold 20
  return x > T(20) ? x : std::log1p(std::exp(x));
}

template <typename T>
T softplus_slope(T x) {
  return x > T(20) ? T(1) : T(1) / (T(1) + std::exp(-x));
}

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// A 32-byte vector of T (eight floats, four doubles) with GCC's vector extensions, so
// that the compiler neither spills short loops' partial sums nor runs them in scalars;
// loads and stores through memcpy, which compiles to unaligned vector moves.
template <typename T>
struct Vector {
  typedef T Type __attribute__((vector_size(32)));
  static constexpr int64_t kLanes = 32 / sizeof(T);
  static Type load(const T* p) {
    Type v;
    std::memcpy(&v, p, sizeof(Type));
    return v;
  }
  static void store(T* p, const Type& v) { std::memcpy(p, &v, sizeof(Type)); }
  static T sum(const Type& v) {
    T acc = 0;
    for (int64_t l = 0; l < kLanes; ++l) acc += v[l];
    return acc;
  }
};

// Partial sums in four independent vectors: with one vector every step waits for the
// previous fused multiply-add (a four-cycle chain), which ran long products at a
// quarter of the core's rate. (An `omp simd` reduction here went through the stack on
// every iteration.)
template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  using V = Vector<T>;
  constexpr int64_t kLanes = V::kLanes;
  typename V::Type s0 = {}, s1 = {}, s2 = {}, s3 = {};
  int64_t j = 0;
  for (; j + 4 * kLanes <= n; j += 4 * kLanes) {
    s0 += V::load(a + j) * V::load(b + j);
    s1 += V::load(a + j + kLanes) * V::load(b + j + kLanes);
    s2 += V::load(a + j + 2 * kLanes) * V::load(b + j + 2 * kLanes);
    s3 += V::load(a + j + 3 * kLanes) * V::load(b + j + 3 * kLanes);
  }
  for (; j + kLanes <= n; j += kLanes) s0 += V::load(a + j) * V::load(b + j);
  T acc = V::sum((s0 + s1) + (s2 + s3));
  for (; j < n; ++j) acc += a[j] * b[j];
  return acc;
}

// out[j * n + i] = in[i * w + j]: rows of an (n, w) matrix as columns, so that dot
// products with every row vectorise over the rows.
// The outer loop runs over columns so that the stores are contiguous: stores n apart
// (a power of two in practice) fall into the same cache sets and stall.
template <typename T>
void transpose(const T* in, int64_t n, int64_t w, T* out) {
  for (int64_t j = 0; j < w; ++j) {
    T* column = out + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) column[i] = in[i * w + j];
  }
}

// out[i] = sum_j v[j] columns[j * n + i]: v dotted with every row, from transpose()'s output.
template <typename T>
void dot_rows(const T* columns, const T* v, int64_t n, int64_t w, T* out) {
  std::fill(out, out + n, T(0));
  for (int64_t j = 0; j < w; ++j) {
    const T vj = v[j];
    const T* column = columns + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] += vj * column[i];
  }
}

// out[j] = sum_i weights[i] rows[i * w + j]: a read of an (n, w) memory (NTM eq. 2).
template <typename T>
void read_rows(const T* weights, const T* rows, int64_t n, int64_t w, T* out) {
  std::fill(out, out + w, T(0));
  for (int64_t i = 0; i < n; ++i) {
    const T wi = weights[i];
    const T* row = rows + i * w;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) out[j] += wi * row[j];
  }
}

// The Euclidean norms of the n rows, from transpose()'s output.
template <typename T>
void row_norms_of(const T* columns, int64_t n, int64_t w, T* out) {
  std::fill(out, out + n, T(0));
  for (int64_t j = 0; j < w; ++j) {
    const T* column = columns + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] += column[i] * column[i];
  }
  for (int64_t i = 0; i < n; ++i) out[i] = std::sqrt(out[i]);
}

// In place: values <- values / sum(values) over n entries; returns the sum.
template <typename T>
T normalize(T* values, int64_t n) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += values[i];
  const T inverse = T(1) / sum;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) values[i] *= inverse;
  return sum;
}

// In place: values <- softmax(values) over n entries.
template <typename T>
void softmax(T* values, int64_t n) {
  T top = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : top)
  for (int64_t i = 0; i < n; ++i) top = std::max(top, values[i]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) values[i] = exp_value(values[i] - top);
  normalize(values, n);
}

// Content weighting of one key over the n rows of a memory given as transpose()'s
// output with its row norms (eqs. 5-6). Writes the similarities K, the denominators
// |k||M(i)| + eps and the weights; returns |k|.
template <typename T>
T content_forward(const T* key, T beta, T eps, const T* columns, const T* row_norms, int64_t n,
                  int64_t w, T* similarity, T* denominator, T* weights) {
  const T key_norm = std::sqrt(dot(key, key, w));
  dot_rows(columns, key, n, w, similarity);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    denominator[i] = key_norm * row_norms[i] + eps;
    similarity[i] /= denominator[i];
    weights[i] = beta * similarity[i];
  }
  softmax(weights, n);
  return key_norm;
}

// Backward of content_forward for a gradient `grad` (n) at the weights: writes
// dL/dkey (w) and returns dL/dbeta; adds dL/dM through the dot products to grad_memory
// (n, w, row-major) and dL/d|M(i)| to grad_row_norms (n), which the caller turns into
// dL/dM once every key's share is in (add_row_norm_gradients).
template <typename T>
T content_backward(const T* grad, const T* weights, const T* similarity, const T* denominator,
                   T beta, const T* key, T key_norm, const T* memory, const T* row_norms,
                   int64_t n, int64_t w, T* grad_key, T* grad_memory, T* grad_row_norms) {
  const T tiny = std::numeric_limits<T>::min();
  const T mean = dot(grad, weights, n);
  T grad_beta = 0, grad_key_norm = 0;
  std::fill(grad_key, grad_key + w, T(0));
  for (int64_t i = 0; i < n; ++i) {
    const T grad_z = weights[i] * (grad[i] - mean);
    grad_beta += grad_z * similarity[i];
    const T grad_dot = grad_z * beta / denominator[i];
    const T grad_denominator = -grad_dot * similarity[i];
    grad_key_norm += grad_denominator * row_norms[i];
    grad_row_norms[i] += grad_denominator * key_norm;
    const T* row = memory + i * w;
    T* grad_row = grad_memory + i * w;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      grad_key[j] += grad_dot * row[j];
      grad_row[j] += grad_dot * key[j];
    }
  }
  const T scale = grad_key_norm / std::max(key_norm, tiny);
  for (int64_t j = 0; j < w; ++j) grad_key[j] += scale * key[j];
  return grad_beta;
}

// Backward of one write head's erase and add, M_t(i) = M(i) o (1 - w(i) e) + w(i) a
// (NTM eqs. 3-4; the DNC's write, whose add vector is its write vector v). Given
// G = dL/dM_t (n, w): adds dL/dw(i) = G(i) . (a - M(i) o e) to grad_weights (n),
// -sum_i w(i) G(i) o M(i) to grad_erase (w) and sum_i w(i) G(i) to grad_add (w), and
// writes dL/dM = G o (1 - w e^T) to grad_memory (n, w).
template <typename T>
void erase_add_backward(const T* G, const T* memory, const T* weights, const T* erase,
                        const T* add, int64_t n, int64_t w, T* grad_weights, T* grad_erase,
                        T* grad_add, T* grad_memory) {
  for (int64_t i = 0; i < n; ++i) {
    const T wi = weights[i];
    const T* Gi = G + i * w;
    const T* Mi = memory + i * w;
    T* gm = grad_memory + i * w;
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < w; ++j) {
      const T gmj = Gi[j] * Mi[j];
      acc += Gi[j] * add[j] - gmj * erase[j];
      grad_erase[j] -= wi * gmj;
      grad_add[j] += wi * Gi[j];
      gm[j] = Gi[j] * (T(1) - wi * erase[j]);
    }
    grad_weights[i] += acc;
  }
}

// grad_memory(i) += grad_row_norms(i) M(i) / |M(i)| (0 for a zero row, as autograd).
template <typename T>
void add_row_norm_gradients(const T* grad_row_norms, const T* memory, const T* row_norms,
                            int64_t n, int64_t w, T* grad_memory) {
  const T tiny = std::numeric_limits<T>::min();
  for (int64_t i = 0; i < n; ++i) {
    const T scale = grad_row_norms[i] / std::max(row_norms[i], tiny);
    const T* row = memory + i * w;
    T* grad_row = grad_memory + i * w;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) grad_row[j] += scale * row[j];
  }
}

}  // namespace nma_native
