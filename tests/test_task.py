"""Combining a task's metrics over batches: means weighted by size, ratios summed."""

from __future__ import annotations

import torch
from torch import Tensor

from nma import Batch, Options, Ratio, Task
from nma.task import combine_metrics
from nma.trainer import evaluate


def test_means_are_weighted_by_batch_size():
    combined = combine_metrics([({"acc": 1.0}, 3), ({"acc": 0.0}, 1)])
    assert combined == {"acc": 0.75}


def test_ratios_are_summed_before_dividing():
    # 1 of 1 right in the first batch, 1 of 3 in the second: 2 / 4, not mean(1, 1/3)
    combined = combine_metrics([({"acc_a": Ratio(1, 1)}, 8), ({"acc_a": Ratio(1, 3)}, 8)])
    assert combined == {"acc_a": 0.5}


def test_a_ratio_with_no_count_anywhere_is_left_out():
    combined = combine_metrics([({"a": Ratio(0, 0), "b": 1.0}, 2), ({"a": Ratio(0, 0)}, 2)])
    assert combined == {"b": 1.0}


class Buckets(Task):
    """Held-out sequences of two kinds, unevenly spread over batches."""

    main_metric = "accuracy"

    def __init__(self, config: Options) -> None:
        super().__init__(config)
        self.input_size, self.output_size = 1, 1

    def batches(self, split, batch_size, generator):
        # kind in channel 0 of inputs; "right" in targets; 5 sequences in batches of 2
        kinds = [0, 0, 1, 0, 1]
        right = [1, 1, 0, 0, 1]
        for start in range(0, 5, batch_size):
            k = torch.tensor(kinds[start : start + batch_size], dtype=torch.float32)
            r = torch.tensor(right[start : start + batch_size], dtype=torch.float32)
            yield Batch(k.view(1, -1, 1), r.view(1, -1, 1), torch.ones(1, len(k)))

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return outputs.sum() * 0

    def metrics(self, outputs, batch):
        kind, right = batch.inputs[0, :, 0], batch.targets[0, :, 0]
        return {
            "accuracy": right.mean().item(),
            "accuracy_kind_1": Ratio(right[kind == 1].sum().item(), (kind == 1).sum().item()),
        }


class Summarized(Buckets):
    def summarize_metrics(self, metrics):
        return {**metrics, "kinds_below_60": float(metrics["accuracy_kind_1"] < 0.6)}


class Zero(torch.nn.Module):
    def forward(self, inputs):
        return inputs * 0, None


def test_evaluate_gives_exact_subset_metrics():
    metrics = evaluate(Zero(), Buckets(Options()), 2, torch.device("cpu"))
    assert metrics["accuracy"] == 3 / 5
    assert metrics["accuracy_kind_1"] == 1 / 2  # sequences 2 (wrong) and 4 (right)


def test_summaries_are_derived_from_the_combined_metrics():
    metrics = evaluate(Zero(), Summarized(Options()), 2, torch.device("cpu"))
    assert metrics["kinds_below_60"] == 1.0
