// The LSTM controller and a native memory step (NTM or DNC) over a whole sequence, as
// two native CPU operators: the forward loop over the steps and the backward loop.
//
// The recurrence is the model's (nma/model.py; nma_plugins/controllers/lstm_sequence.py
// writes it out): with W_ih = [W_x | W_r],
//
//   a_t = x_t W_x^T + r_{t-1} W_r^T + h_{t-1} W_hh^T + b_ih + b_hh,
//   h_t, c_t = LSTM cell(a_t, c_{t-1}),   r_t, m_t = memory step(h_t W_i^T + b_i, m_{t-1}).
//
// The inputs' share of every step's gates is one product before the loop. The backward
// loop runs the memory step's and the cell's backward passes (ntm_step.cpp,
// dnc_step.cpp, lstm_cell.cpp) and keeps each step's gate and interface gradients, so
// that the weight gradients are one product each over all T B rows after the loop.
//
// Shapes: T steps, B batch, X input size (without the reads), H hidden size, P
// interface size, Q read size.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "steps.h"

namespace {

std::optional<at::Tensor> maybe(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

at::Tensor sum(const at::Tensor& a, const at::Tensor& b) {
  if (!a.defined()) return b;
  return b.defined() ? a + b : a;
}

// A memory step chosen by `kind`:
//   0, the NTM: params {shift offsets S, eps}; state {memory, read_weights, write_weights};
//   1, the DNC: params {read_eps, write_eps, usage_eps}; state {memory, usage, link,
//      precedence, read_weights, write_weights}
// (the orders of NTMState and DNCState).
class MemoryStep {
 public:
  MemoryStep(int64_t kind, at::ArrayRef<double> params)
      : ntm_(kind == 0), params_(params.begin(), params.end()) {
    TORCH_CHECK(kind == 0 || kind == 1, "unknown memory step kind ", kind);
    TORCH_CHECK(params_.size() == (ntm_ ? 2u : 3u), "wrong number of memory step parameters");
  }

  size_t state_size() const { return ntm_ ? 3 : 6; }
  size_t saved_size() const { return ntm_ ? 11 : 12; }
  bool has_link() const { return !ntm_; }

  // Where the DNC's link matrix sits in the state and among a step's saved tensors, and
  // where the step's write weighting w_t and its input precedence p_{t-1} are saved.
  static constexpr size_t kLinkState = 2, kLinkSaved = 3, kPrecedenceSaved = 4,
                          kWriteSaved = 9;

  // Replaces `state` by the new state, appends saved_size() tensors for the backward
  // pass to `saved`, and returns the reads (B, Q). The DNC writes the new link matrix
  // into `link_out` where defined (else a new tensor), and saves the step's input link
  // only with `keep_link` (else an empty placeholder; the backward pass rebuilds it).
  at::Tensor forward(const at::Tensor& interface, std::vector<at::Tensor>& state,
                     std::vector<at::Tensor>& saved, const at::Tensor& link_out,
                     bool keep_link) const {
    if (ntm_) {
      const std::vector<at::Tensor> out = nma_native::ntm_forward(
          interface, state[0], state[2], state[1], static_cast<int64_t>(params_[0]), params_[1]);
      // out: reads, memory, read weights, write weights, then six tensors for backward.
      saved.insert(saved.end(), {interface, state[0], state[2], state[1], out[1]});
      saved.insert(saved.end(), out.begin() + 4, out.end());
      state = {out[1], out[2], out[3]};
      return out[0];
    }
    const std::vector<at::Tensor> out =
        nma_native::dnc_forward_into(interface, state[0], state[1], state[2], state[3], state[4],
                                     state[5], params_[0], params_[1], params_[2], link_out);
    // out: reads, the six state tensors, rows, free list.
    saved.push_back(interface);
    saved.insert(saved.end(), state.begin(), state.end());
    if (!keep_link) {
      saved[saved.size() - state.size() + kLinkState] = at::empty({0}, out[0].options());
    }
    saved.insert(saved.end(), {out[1], out[5], out[6], out[7], out[8]});
    state.assign(out.begin() + 1, out.begin() + 7);
    return out[0];
  }

  // From the gradients at the reads and at the new state (undefined: zero), returns the
  // gradient at the interface and replaces `grad_state` by the gradients at the
  // previous state; with `wanted` false, the DNC's link gradient is skipped (undefined).
  // With `own` true the gradients in `grad_state` are this loop's own buffers, which the
  // DNC's link gradient overwrites (N x N per item: fresh memory every step costs more
  // than the arithmetic). `link` is the DNC step's input link matrix (the NTM: unused).
  at::Tensor backward(const at::Tensor& grad_reads, std::vector<at::Tensor>& grad_state,
                      const at::Tensor* s, const at::Tensor& link, bool wanted, bool own) const {
    const std::vector<at::Tensor>& g = grad_state;
    if (ntm_) {
      const std::vector<at::Tensor> out =
          nma_native::ntm_backward(maybe(grad_reads), maybe(g[0]), maybe(g[1]), maybe(g[2]),
                                   s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10]);
      // out: interface, memory, write weights, read weights.
      grad_state = {out[1], out[3], out[2]};
      return out[0];
    }
    std::vector<at::Tensor> out = nma_native::dnc_backward_into(
        maybe(grad_reads), maybe(g[0]), maybe(g[1]), maybe(g[2]), maybe(g[3]), maybe(g[4]),
        maybe(g[5]), s[0], s[1], s[2], link, s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11],
        params_[2], wanted, own ? g[2] : at::Tensor());
    grad_state.assign(out.begin() + 1, out.end());
    if (!wanted) grad_state[2] = at::Tensor();
    return out[0];
  }

 private:
  bool ntm_;
  std::vector<double> params_;
};

// The DNC's link matrices are checkpointed: the forward pass keeps the input link of
// every link_chunk(T)-th step only, and the backward pass rebuilds the others, one chunk
// of steps at a time, from the kept link and the saved write weightings and precedences
// (eq. F8, the forward pass's own arithmetic: dnc_link_into). Chunks of ceil(sqrt(T))
// steps keep about 2 sqrt(T) links of N x N per item alive instead of T (Chen et al.
// 2016, "Training Deep Nets with Sublinear Memory Cost", section 4.1), for one more link
// update per step. A dnc at 2048 slots, batch 8 and 41 steps needs 1.8 GiB for its
// training step instead of 5.4 (benchmarks/results/memory-footprint-cpu.md); at 128
// slots the time of a step is the same within this machine's noise.
int64_t link_chunk(int64_t T) {
  int64_t k = 1;
  while (k * k < T) ++k;
  return k;
}

// The DNC steps' input links in the backward pass, asked for from the last step down:
// the kept ones as they are, the others rebuilt for one chunk of steps at a time from
// the link kept at the chunk's first step (see link_chunk).
class InputLinks {
 public:
  InputLinks(at::TensorList saved, int64_t per_step) : saved_(saved), per_step_(per_step) {}

  // Step t's input link L_{t-1}; valid until a call for an earlier chunk.
  at::Tensor of_step(int64_t t) {
    if (kept(t)) return saved_at(t, MemoryStep::kLinkSaved);
    if (t <= first_) rebuild_chunk(t);
    return rebuilt_[t - first_ - 1];
  }

 private:
  const at::Tensor& saved_at(int64_t t, size_t i) const {
    return saved_[t * per_step_ + 3 + static_cast<int64_t>(i)];
  }
  bool kept(int64_t t) const { return saved_at(t, MemoryStep::kLinkSaved).dim() == 3; }

  // L_j = (F8)(L_{j-1}, w_j, p_{j-1}) for the steps j of t's chunk before t.
  void rebuild_chunk(int64_t t) {
    first_ = t;
    while (!kept(first_)) --first_;
    const at::Tensor& from = saved_at(first_, MemoryStep::kLinkSaved);
    if (!rebuilt_.defined() || rebuilt_.size(0) < t - first_) {
      rebuilt_ = at::empty({t - first_, from.size(0), from.size(1), from.size(2)}, from.options());
    }
    for (int64_t j = first_; j < t; ++j) {
      nma_native::dnc_link_into(j == first_ ? from : rebuilt_[j - first_ - 1],
                                saved_at(j, MemoryStep::kWriteSaved),
                                saved_at(j, MemoryStep::kPrecedenceSaved), rebuilt_[j - first_]);
    }
  }

  at::TensorList saved_;
  int64_t per_step_;
  int64_t first_ = INT64_MAX;  // the first step of the chunk in rebuilt_
  at::Tensor rebuilt_;         // rebuilt_[j]: the input link of step first_ + 1 + j
};

// Returns {hiddens (T, B, H), reads (T, B, Q), c_T (B, H), the memory state after the
// last step, then per step c_{t-1}, the activated gates, tanh(c_t) and the memory
// step's saved tensors}.
std::vector<at::Tensor> lstm_memory_forward(int64_t kind, at::ArrayRef<double> params,
                                            const at::Tensor& inputs, const at::Tensor& h0,
                                            const at::Tensor& c0, const at::Tensor& reads0,
                                            at::TensorList state0, const at::Tensor& w_ih,
                                            const at::Tensor& w_hh, const at::Tensor& b_ih,
                                            const at::Tensor& b_hh, const at::Tensor& w_i,
                                            const at::Tensor& b_i) {
  TORCH_CHECK(inputs.device().is_cpu(), "lstm_memory_forward runs on the CPU");
  const MemoryStep step(kind, params);
  TORCH_CHECK(state0.size() == step.state_size(), "wrong number of memory state tensors");
  const int64_t T = inputs.size(0), B = inputs.size(1), X = inputs.size(2);
  const at::Tensor w_r = w_ih.narrow(1, X, w_ih.size(1) - X);
  const at::Tensor pre =
      at::addmm(b_ih + b_hh, inputs.reshape({T * B, X}), w_ih.narrow(1, 0, X).t())
          .view({T, B, -1});
  std::vector<at::Tensor> state(state0.begin(), state0.end());
  at::Tensor hiddens = at::empty({T, B, w_hh.size(1)}, pre.options());
  std::vector<at::Tensor> all_reads, saved;
  all_reads.reserve(T);
  saved.reserve(T * (3 + step.saved_size()));
  at::Tensor h = h0, c = c0, reads = reads0;
  // The DNC's links: step t's input link is kept where t % chunk == 0; the others are
  // written into two buffers in turn, which stay in the caches.
  const int64_t chunk = step.has_link() ? link_chunk(T) : 1;
  at::Tensor buffers[2];
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor gates = at::addmm(pre[t], reads, w_r.t());
    gates.addmm_(h, w_hh.t());
    std::vector<at::Tensor> cell = nma_native::lstm_activate(gates, c, hiddens[t]);
    saved.insert(saved.end(), {c, gates, cell[2]});
    h = std::move(cell[0]);
    c = std::move(cell[1]);
    at::Tensor link_out;
    if (chunk > 1 && (t + 1) % chunk != 0 && t + 1 < T) {
      at::Tensor& buffer = buffers[t % 2];
      if (!buffer.defined()) {
        buffer = at::empty(state[MemoryStep::kLinkState].sizes(), state[0].options());
      }
      link_out = buffer;
    }
    reads = step.forward(at::addmm(b_i, h, w_i.t()), state, saved, link_out, t % chunk == 0);
    all_reads.push_back(reads);
  }
  std::vector<at::Tensor> out = {hiddens, at::stack(all_reads), c};
  out.insert(out.end(), state.begin(), state.end());
  out.insert(out.end(), saved.begin(), saved.end());
  return out;
}

// Returns {grad_inputs (T, B, X) (empty unless inputs_wanted), grad_h0, grad_c0,
// grad_reads0, grad_W_ih, grad_W_hh, grad_b (b_ih's and b_hh's), grad_W_i, grad_b_i,
// then the gradients at the initial memory state (empty where skipped)}.
std::vector<at::Tensor> lstm_memory_backward(
    int64_t kind, at::ArrayRef<double> params, const std::optional<at::Tensor>& grad_hiddens,
    const std::optional<at::Tensor>& grad_reads, const std::optional<at::Tensor>& grad_cell_in,
    const c10::List<std::optional<at::Tensor>>& grad_state_in, const at::Tensor& inputs,
    const at::Tensor& h0, const at::Tensor& reads0, const at::Tensor& hiddens,
    const at::Tensor& all_reads, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const at::Tensor& w_i, at::TensorList saved, bool state_wanted, bool inputs_wanted) {
  const MemoryStep step(kind, params);
  const int64_t T = inputs.size(0), B = inputs.size(1), X = inputs.size(2);
  const int64_t per_step = 3 + static_cast<int64_t>(step.saved_size());
  TORCH_CHECK(static_cast<int64_t>(saved.size()) == T * per_step, "wrong number of saved tensors");
  const at::Tensor w_r = w_ih.narrow(1, X, w_ih.size(1) - X);
  const at::Tensor all_hidden_grads = grad_hiddens.value_or(at::Tensor());
  const at::Tensor all_read_grads = grad_reads.value_or(at::Tensor());
  at::Tensor grad_gates = at::empty({T, B, w_hh.size(0)}, hiddens.options());
  at::Tensor grad_interfaces = at::empty({T, B, w_i.size(0)}, hiddens.options());
  std::vector<at::Tensor> grad_state;
  for (const std::optional<at::Tensor>& g : grad_state_in) {
    grad_state.push_back(g.has_value() ? *g : at::Tensor());
  }
  TORCH_CHECK(grad_state.size() == step.state_size(), "wrong number of state gradients");
  at::Tensor grad_cell = grad_cell_in.value_or(at::Tensor());
  at::Tensor grad_hidden, grad_read;
  InputLinks links(saved, per_step);
  for (int64_t t = T - 1; t >= 0; --t) {
    const at::Tensor* s = saved.data() + t * per_step;
    const at::Tensor link = step.has_link() ? links.of_step(t) : at::Tensor();
    const at::Tensor read_grad =
        sum(all_read_grads.defined() ? all_read_grads[t] : at::Tensor(), grad_read);
    const at::Tensor grad_interface =
        step.backward(read_grad, grad_state, s + 3, link, t > 0 || state_wanted, t < T - 1);
    grad_interfaces[t].copy_(grad_interface);
    at::Tensor hidden_grad =
        sum(all_hidden_grads.defined() ? all_hidden_grads[t] : at::Tensor(), grad_hidden);
    hidden_grad = hidden_grad.defined() ? at::addmm(hidden_grad, grad_interface, w_i)
                                        : grad_interface.mm(w_i);
    std::vector<at::Tensor> cell = nma_native::lstm_cell_gates_backward_into(
        hidden_grad, maybe(grad_cell), s[0], s[1], s[2], grad_gates[t]);
    grad_cell = std::move(cell[1]);
    grad_hidden = cell[0].mm(w_hh);
    grad_read = cell[0].mm(w_r);
  }
  const at::Tensor rows = grad_gates.view({T * B, -1});
  const at::Tensor interface_rows = grad_interfaces.view({T * B, -1});
  const at::Tensor prev_hiddens = at::cat({h0.unsqueeze(0), hiddens.narrow(0, 0, T - 1)});
  const at::Tensor prev_reads = at::cat({reads0.unsqueeze(0), all_reads.narrow(0, 0, T - 1)});
  const at::Tensor rows_t = rows.t();
  std::vector<at::Tensor> out = {
      inputs_wanted ? rows.mm(w_ih.narrow(1, 0, X)).view({T, B, X}) : at::empty({0}, rows.options()),
      grad_hidden,
      grad_cell,
      grad_read,
      at::cat({rows_t.mm(inputs.reshape({T * B, X})), rows_t.mm(prev_reads.reshape({T * B, -1}))},
              1),
      rows_t.mm(prev_hiddens.reshape({T * B, -1})),
      rows.sum(0),
      interface_rows.t().mm(hiddens.reshape({T * B, -1})),
      interface_rows.sum(0)};
  for (const at::Tensor& g : grad_state) {
    out.push_back(g.defined() ? g : at::empty({0}, rows.options()));
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(nma_native, m) {
  m.def("lstm_memory_forward",
        torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(lstm_memory_forward)));
  m.def("lstm_memory_backward",
        torch::dispatch(c10::DispatchKey::CPU, TORCH_FN(lstm_memory_backward)));
}
