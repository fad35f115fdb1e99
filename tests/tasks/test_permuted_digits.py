"""permuted-digits: the images, the permutations, the split."""

from __future__ import annotations

import itertools

import torch

from nma_tasks.digits_data import load_digits
from nma_tasks.permuted_digits import PermutedDigitsTask


def make(**options) -> PermutedDigitsTask:
    return PermutedDigitsTask(PermutedDigitsTask.Config(**options))


def pixels_of(batch) -> torch.Tensor:
    """The 64 pixels of each sequence, read back from its 8 row steps."""
    return batch.inputs[:8, :, :8].transpose(0, 1).reshape(batch.inputs.shape[1], 64)


def test_permutations_are_fixed_per_experience_and_differ_across():
    a, b = make(num_experiences=4, seed=3), make(num_experiences=4, seed=3)
    for p, q in zip(a.permutations, b.permutations, strict=True):
        assert torch.equal(p, q) and sorted(p.tolist()) == list(range(64))
    perms = {tuple(p.tolist()) for p in a.permutations}
    assert len(perms) == 4
    assert not torch.equal(a.permutations[0], make(num_experiences=4, seed=4).permutations[0])
    assert torch.equal(make(first_identity=True).permutations[0], torch.arange(64))


def test_held_out_images_are_the_permuted_digits_with_their_labels():
    task = make(num_experiences=3, test_fraction=0.25)
    images, labels = load_digits()
    flat = images.flatten(1)
    for e in range(3):
        batches = list(task.batches("eval", 100, torch.Generator(), experience=e))
        got = torch.cat([pixels_of(b) for b in batches])
        answers = torch.cat([b.targets[8].argmax(-1) for b in batches])
        assert len(got) == sum(round(n * 0.25) for n in torch.bincount(labels).tolist())
        # each held-out row is some image, permuted by this experience's permutation
        unpermuted = torch.empty_like(got)
        unpermuted[:, task.permutations[e]] = got
        for row, label in zip(unpermuted[:20], answers[:20], strict=True):
            match = (flat == row).all(dim=1).nonzero().squeeze(1)
            assert len(match) >= 1 and int(labels[match[0]]) == int(label)


def test_training_and_held_out_images_are_disjoint():
    task = make(num_experiences=1)
    train = task.data("train", 0).pixels
    test = task.data("eval", 0).pixels
    assert len(train) + len(test) == 1797
    shared = (train.unsqueeze(1) == test.unsqueeze(0)).all(-1).any(1)
    # identical images occur in the digits data; they must be rare, not a leak
    assert int(shared.sum()) < 5


def test_encoding_answers_at_the_last_step_only():
    task = make()
    batch = next(task.batches("train", 8, torch.Generator().manual_seed(0), experience=2))
    assert batch.inputs.shape == (9, 8, 9) and batch.targets.shape == (9, 8, 10)
    assert torch.equal(batch.mask, torch.cat([torch.zeros(8, 8), torch.ones(1, 8)]))
    assert torch.all(batch.inputs[8, :, 8] == 1) and torch.all(batch.inputs[:8, :, 8] == 0)
    assert torch.all(batch.targets[8].sum(-1) == 1)  # one-hot, all ten classes allowed
    perfect = batch.targets * 10
    assert task.metrics(perfect, batch)["accuracy"] == 1.0
    assert task.loss(perfect, batch) < 1e-3


def test_streams_are_seeded_and_joint_batches_mix_experiences():
    task = make(num_experiences=3)
    one = list(itertools.islice(task.batches("train", 6, torch.Generator().manual_seed(1), 1), 3))
    two = list(itertools.islice(task.batches("train", 6, torch.Generator().manual_seed(1), 1), 3))
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(one, two, strict=True))
    joint = next(task.batches("train", 300, torch.Generator().manual_seed(2)))
    pools = [task.data("train", e).pixels for e in range(3)]
    owners = set()
    for row in pixels_of(joint)[:60]:
        owners |= {e for e, pool in enumerate(pools) if (pool == row).all(1).any()}
    assert owners == {0, 1, 2}
    held_out = sum(b.inputs.shape[1] for b in task.batches("eval", 64, torch.Generator()))
    assert held_out == 3 * len(task.data("eval", 0))
