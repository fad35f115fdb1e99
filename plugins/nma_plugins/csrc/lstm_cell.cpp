// One LSTM cell step, forward and backward, as two native CPU kernels.
//
// Hochreiter & Schmidhuber (1997), in the form torch.nn.LSTMCell computes (gates in the
// order input, forget, cell, output):
//
//   a = x W_ih^T + b_ih + h W_hh^T + b_hh,   i, f, o = sigmoid(a_i, a_f, a_o),
//   g = tanh(a_g),   c' = f o c + i o g,   h' = o o tanh(c').
//
// Backward, with dh', dc' the incoming gradients (either may be absent) and
// t = tanh(c'):  dC = dc' + dh' o o o (1 - t^2),  d a_o = dh' o t o o (1 - o),
// d a_i = dC o g o i (1 - i),  d a_f = dC o c o f (1 - f),  d a_g = dC o i o (1 - g^2),
// dc = dC o f, then dx = da W_ih, dh = da W_hh, dW_ih = da^T x, dW_hh = da^T h,
// db_ih = db_hh = sum over the batch of da. The matrix products go to ATen's BLAS; the
// elementwise parts are one loop each, where autograd would record a dozen nodes.
//
// Shapes: B batch, I input size, H hidden size.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <optional>
#include <vector>

#include "common.h"
#include "steps.h"

namespace {

using namespace nma_native;

// One batch row: the gates' activations in place (i, f, o through the logistic function,
// g through tanh), then c' = f o c + i o g, tanh(c') and h' = o o tanh(c'). float32 uses
// the vectorisable functions of vector_math.h.
template <typename T>
void activate_row(T* a, const T* c, int64_t hidden, T* new_c, T* tanh_c, T* new_h) {
#pragma omp simd
  for (int64_t k = 0; k < 2 * hidden; ++k) a[k] = sigmoid_value(a[k]);
#pragma omp simd
  for (int64_t k = 2 * hidden; k < 3 * hidden; ++k) a[k] = tanh_value(a[k]);
#pragma omp simd
  for (int64_t k = 3 * hidden; k < 4 * hidden; ++k) a[k] = sigmoid_value(a[k]);
#pragma omp simd
  for (int64_t k = 0; k < hidden; ++k) {
    new_c[k] = a[hidden + k] * c[k] + a[k] * a[2 * hidden + k];
    tanh_c[k] = tanh_value(new_c[k]);
    new_h[k] = a[3 * hidden + k] * tanh_c[k];
  }
}

}  // namespace

namespace nma_native {

// Applies the activations to the gates (B, 4H) in place, given c (B, H); returns
// {h' (B, H), c' (B, H), tanh(c') (B, H)}, h' written into `h_out` where it is defined
// (contiguous, (B, H)).
std::vector<at::Tensor> lstm_activate(at::Tensor& gates, const at::Tensor& c,
                                      const at::Tensor& h_out) {
  TORCH_CHECK(gates.is_contiguous(), "lstm_activate needs contiguous gates");
  const at::Tensor cell = c.contiguous();
  const int64_t B = gates.size(0), H = gates.size(1) / 4;
  at::Tensor new_c = at::empty({B, H}, gates.options());
  at::Tensor tanh_c = at::empty({B, H}, gates.options());
  at::Tensor new_h = h_out.defined() ? h_out : at::empty({B, H}, gates.options());
  TORCH_CHECK(new_h.is_contiguous() && new_h.numel() == B * H, "lstm_activate: bad h_out");
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_activate", [&] {
    using T = scalar_t;
    for (int64_t b = 0; b < B; ++b) {
      activate_row<T>(gates.data_ptr<T>() + b * 4 * H, cell.data_ptr<T>() + b * H, H,
                      new_c.data_ptr<T>() + b * H, tanh_c.data_ptr<T>() + b * H,
                      new_h.data_ptr<T>() + b * H);
    }
  });
  return {new_h, new_c, tanh_c};
}

// Returns {h' (B, H), c' (B, H), gates (B, 4H) after their activations, tanh(c') (B, H)}.
std::vector<at::Tensor> lstm_cell_forward(const at::Tensor& x, const at::Tensor& h,
                                          const at::Tensor& c, const at::Tensor& w_ih,
                                          const at::Tensor& w_hh, const at::Tensor& b_ih,
                                          const at::Tensor& b_hh) {
  TORCH_CHECK(x.device().is_cpu(), "lstm_cell_forward runs on the CPU");
  at::Tensor gates = at::addmm(b_ih, x, w_ih.t());
  gates.addmm_(h, w_hh.t());
  gates.add_(b_hh);
  std::vector<at::Tensor> out = lstm_activate(gates, c, at::Tensor());
  return {out[0], out[1], gates, out[2]};
}

// Returns {grad_gates (B, 4H), grad_c (B, H)}: the gradients at the gates' inputs `a`
// (before their activations) and at the previous cell state.
std::vector<at::Tensor> lstm_cell_gates_backward(const std::optional<at::Tensor>& grad_h_in,
                                                 const std::optional<at::Tensor>& grad_c_in,
                                                 const at::Tensor& c, const at::Tensor& gates,
                                                 const at::Tensor& tanh_c) {
  return lstm_cell_gates_backward_into(grad_h_in, grad_c_in, c, gates, tanh_c, at::Tensor());
}

// lstm_cell_gates_backward, the gate gradients written into `gates_out` where it is
// defined (contiguous, (B, 4H)).
std::vector<at::Tensor> lstm_cell_gates_backward_into(
    const std::optional<at::Tensor>& grad_h_in, const std::optional<at::Tensor>& grad_c_in,
    const at::Tensor& c, const at::Tensor& gates, const at::Tensor& tanh_c,
    const at::Tensor& gates_out) {
  const auto dtype = gates.scalar_type();
  auto maybe = [&](const std::optional<at::Tensor>& t) {
    return t.has_value() && t->defined() ? t->to(dtype).contiguous() : at::Tensor();
  };
  const at::Tensor grad_h = maybe(grad_h_in), grad_c = maybe(grad_c_in);
  const at::Tensor cell = c.contiguous();
  const int64_t B = gates.size(0), H = gates.size(1) / 4;
  at::Tensor grad_gates =
      gates_out.defined() ? gates_out : at::empty({B, 4 * H}, gates.options());
  TORCH_CHECK(grad_gates.is_contiguous() && grad_gates.numel() == B * 4 * H,
              "lstm_cell_gates_backward: bad gates_out");
  at::Tensor grad_cell = at::empty({B, H}, gates.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "lstm_cell_gates_backward", [&] {
    using T = scalar_t;
    at::parallel_for(0, B, 8, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const T* a = gates.data_ptr<T>() + b * 4 * H;
        const T* tc = tanh_c.data_ptr<T>() + b * H;
        const T* cp = cell.data_ptr<T>() + b * H;
        const T* gh = grad_h.defined() ? grad_h.data_ptr<T>() + b * H : nullptr;
        const T* gc = grad_c.defined() ? grad_c.data_ptr<T>() + b * H : nullptr;
        T* ga = grad_gates.data_ptr<T>() + b * 4 * H;
        T* gcp = grad_cell.data_ptr<T>() + b * H;
        for (int64_t k = 0; k < H; ++k) {
          const T i = a[k], f = a[H + k], g = a[2 * H + k], o = a[3 * H + k];
          const T dh = gh != nullptr ? gh[k] : T(0);
          const T dC = (gc != nullptr ? gc[k] : T(0)) + dh * o * (T(1) - tc[k] * tc[k]);
          ga[k] = dC * g * i * (T(1) - i);
          ga[H + k] = dC * cp[k] * f * (T(1) - f);
          ga[2 * H + k] = dC * i * (T(1) - g * g);
          ga[3 * H + k] = dh * tc[k] * o * (T(1) - o);
          gcp[k] = dC * f;
        }
      }
    });
  });
  return {grad_gates, grad_cell};
}

// Returns the gradients {x, h, c, W_ih, W_hh, b_ih, b_hh}; b_hh's equals b_ih's.
std::vector<at::Tensor> lstm_cell_backward(const std::optional<at::Tensor>& grad_h,
                                           const std::optional<at::Tensor>& grad_c,
                                           const at::Tensor& x, const at::Tensor& h,
                                           const at::Tensor& c, const at::Tensor& w_ih,
                                           const at::Tensor& w_hh, const at::Tensor& gates,
                                           const at::Tensor& tanh_c) {
  const std::vector<at::Tensor> grads = lstm_cell_gates_backward(grad_h, grad_c, c, gates, tanh_c);
  const at::Tensor& grad_gates = grads[0];
  at::Tensor grad_bias = grad_gates.sum(0);
  return {grad_gates.mm(w_ih), grad_gates.mm(w_hh), grads[1], grad_gates.t().mm(x),
          grad_gates.t().mm(h), grad_bias, grad_bias};
}

}  // namespace nma_native

TORCH_LIBRARY_FRAGMENT(nma_native, m) {
  using namespace nma_native;
  m.def("lstm_cell_forward", torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(lstm_cell_forward)));
  m.def("lstm_cell_backward", torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(lstm_cell_backward)));
  m.def("lstm_cell_gates_backward",
        torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(lstm_cell_gates_backward)));
}
