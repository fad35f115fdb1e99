// The kernels' e^x, ln x, tanh x and logistic function (vector_math.h) as an operator,
// so that the tests can hold them against exact values:
// elementary(x) = (exp(x), log(x), tanh(x), sigmoid(x)) elementwise.

#include <ATen/ATen.h>
#include <torch/library.h>

#include "vector_math.h"

#include <vector>

namespace {

template <typename T>
void elementary_loop(const T* x, int64_t n, T* exps, T* logs, T* tanhs, T* sigmoids) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    exps[i] = nma_native::exp_value(x[i]);
    logs[i] = nma_native::log_value(x[i]);
    tanhs[i] = nma_native::tanh_value(x[i]);
    sigmoids[i] = nma_native::sigmoid_value(x[i]);
  }
}

std::vector<at::Tensor> elementary(const at::Tensor& x_in) {
  TORCH_CHECK(x_in.device().is_cpu(), "elementary runs on the CPU");
  const at::Tensor x = x_in.contiguous();
  at::Tensor exps = at::empty_like(x);
  at::Tensor logs = at::empty_like(x);
  at::Tensor tanhs = at::empty_like(x);
  at::Tensor sigmoids = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "elementary", [&] {
    elementary_loop<scalar_t>(x.data_ptr<scalar_t>(), x.numel(), exps.data_ptr<scalar_t>(),
                              logs.data_ptr<scalar_t>(), tanhs.data_ptr<scalar_t>(),
                              sigmoids.data_ptr<scalar_t>());
  });
  return {exps, logs, tanhs, sigmoids};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(nma_native, m) {
  m.def("elementary", torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(elementary)));
}
