"""algorithmic-stream: each experience is its task, widened; loss and accuracy skip
the padding channels."""

from __future__ import annotations

import torch

from nma_tasks.algorithmic_stream import AlgorithmicStreamTask
from nma_tasks.copy import CopyTask
from nma_tasks.repeat_copy import RepeatCopyTask


def make(**options) -> AlgorithmicStreamTask:
    return AlgorithmicStreamTask(AlgorithmicStreamTask.Config(**options))


def test_experiences_are_the_tasks_batches_widened():
    task = make(width=3)
    assert task.experience_names() == ["copy", "repeat-copy", "associative-recall"]
    assert (task.input_size, task.output_size) == (5, 4)
    copy = CopyTask(CopyTask.Config(width=3, max_length=5, eval_size=64))
    got = next(task.batches("train", 4, torch.Generator().manual_seed(0), experience=0))
    ref = next(copy.batches("train", 4, torch.Generator().manual_seed(0)))
    assert torch.equal(got.inputs[..., :4], ref.inputs) and torch.all(got.inputs[..., 4] == 0)
    assert torch.equal(got.targets[..., :3], ref.targets) and torch.all(got.targets[..., 3] == -1)
    repeat = RepeatCopyTask(RepeatCopyTask.Config(width=3, max_length=5, max_repeats=3))
    got = next(task.batches("train", 4, torch.Generator().manual_seed(1), experience=1))
    ref = next(repeat.batches("train", 4, torch.Generator().manual_seed(1)))
    assert torch.equal(got.targets, ref.targets)  # the widest output: no padding


def test_padding_channels_are_not_scored():
    task = make(width=3)
    batch = next(task.batches("train", 4, torch.Generator().manual_seed(0), experience=0))
    perfect = (batch.targets.clamp_min(0) * 2 - 1) * 5
    perfect[..., 3] = 5.0  # a "wrong" bit on the padding channel
    assert task.metrics(perfect, batch) == {"accuracy": 1.0, "sequence_accuracy": 1.0}
    assert task.loss(perfect, batch) < 0.01


def test_joint_and_held_out_streams():
    task = make(width=3, eval_size=10)
    held = list(task.batches("eval", 4, torch.Generator().manual_seed(0)))
    assert sum(b.inputs.shape[1] for b in held) == 30
    joint = task.batches("train", 2, torch.Generator().manual_seed(0))
    widths = {tuple(next(joint).inputs.shape[2:]) for _ in range(10)}
    assert widths == {(5,)}
