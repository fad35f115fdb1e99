// The native steps that lstm_sequence.cpp chains over a sequence: the NTM and DNC
// memory steps (ntm_step.cpp, dnc_step.cpp) and the LSTM cell's parts (lstm_cell.cpp).
// Each is also registered as an operator of its own (dnc_forward_into and
// dnc_backward_into as dnc_forward and dnc_backward, without the output buffer), except
// dnc_link_into; see those files for what the tensors hold.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

namespace nma_native {

std::vector<at::Tensor> ntm_forward(const at::Tensor& interface_in, const at::Tensor& memory_in,
                                    const at::Tensor& write_in, const at::Tensor& read_in,
                                    int64_t shifts, double eps);

std::vector<at::Tensor> ntm_backward(
    const std::optional<at::Tensor>& grad_reads_in, const std::optional<at::Tensor>& grad_memory_in,
    const std::optional<at::Tensor>& grad_read_in, const std::optional<at::Tensor>& grad_write_in,
    const at::Tensor& interface_in, const at::Tensor& memory_in, const at::Tensor& write_in,
    const at::Tensor& read_in, const at::Tensor& new_memory, const at::Tensor& rows,
    const at::Tensor& scalars, const at::Tensor& shift, const at::Tensor& erase,
    const at::Tensor& add, const at::Tensor& row_norms);

std::vector<at::Tensor> dnc_forward_into(
    const at::Tensor& interface_in, const at::Tensor& memory_in, const at::Tensor& usage_in,
    const at::Tensor& link_in, const at::Tensor& precedence_in, const at::Tensor& read_in,
    const at::Tensor& write_in, double read_eps, double write_eps, double usage_eps,
    const at::Tensor& link_out);

void dnc_link_into(const at::Tensor& link, const at::Tensor& write, const at::Tensor& precedence,
                   const at::Tensor& out);

std::vector<at::Tensor> dnc_backward_into(
    const std::optional<at::Tensor>& g_reads, const std::optional<at::Tensor>& g_memory,
    const std::optional<at::Tensor>& g_usage, const std::optional<at::Tensor>& g_link,
    const std::optional<at::Tensor>& g_precedence, const std::optional<at::Tensor>& g_read,
    const std::optional<at::Tensor>& g_write, const at::Tensor& interface_in,
    const at::Tensor& memory_in, const at::Tensor& usage_in, const at::Tensor& link_in,
    const at::Tensor& precedence_in, const at::Tensor& read_in, const at::Tensor& write_in,
    const at::Tensor& new_memory, const at::Tensor& read, const at::Tensor& write,
    const at::Tensor& rows, const at::Tensor& free_list, double usage_eps, bool link_wanted,
    const at::Tensor& link_out);

std::vector<at::Tensor> lstm_activate(at::Tensor& gates, const at::Tensor& c,
                                      const at::Tensor& h_out);

std::vector<at::Tensor> lstm_cell_gates_backward_into(
    const std::optional<at::Tensor>& grad_h_in, const std::optional<at::Tensor>& grad_c_in,
    const at::Tensor& c, const at::Tensor& gates, const at::Tensor& tanh_c,
    const at::Tensor& gates_out);

}  // namespace nma_native
