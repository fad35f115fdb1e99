"""MemoryAnalyzer on constructed cases whose answers are known."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from nma.analysis import MemoryAnalyzer
from nma.layers.knn import knn_attention
from nma.recording import Recording

analyzer = MemoryAnalyzer()


def test_one_hot_weighting_has_entropy_zero() -> None:
    weights = torch.eye(8).reshape(2, 4, 8)  # every row one-hot
    result = analyzer.compute_attention_sparsity(weights)
    assert result.entropy == pytest.approx(0.0, abs=1e-12)
    assert result.sparsity == pytest.approx(1.0)


def test_uniform_weighting_has_entropy_log_n() -> None:
    result = analyzer.compute_attention_sparsity(torch.full((3, 2, 16), 1 / 16))
    assert result.entropy == pytest.approx(math.log(16))
    assert result.normalized_entropy == pytest.approx(1.0)
    assert result.sparsity == pytest.approx(0.0, abs=1e-12)


def test_entropy_of_two_equal_slots_is_log_two_and_ignores_scale_sign_and_idle_heads() -> None:
    weights = torch.tensor([[0.0, 0.3, 0.0, -0.3], [0.0, 0.0, 0.0, 0.0]])  # second head idle
    assert analyzer.compute_attention_sparsity(weights).entropy == pytest.approx(math.log(2))


def test_uniform_usage_is_fully_efficient() -> None:
    result = analyzer.compute_memory_efficiency(torch.full((2, 10), 0.7))
    assert (result.utilization, result.evenness, result.efficiency) == pytest.approx((1, 1, 1))


def test_efficiency_of_half_the_slots_used_alike() -> None:
    usage = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    result = analyzer.compute_memory_efficiency(usage)
    assert result.utilization == pytest.approx(0.5)
    assert result.evenness == pytest.approx(math.log(4) / math.log(8))  # 2/3


def test_efficiency_of_one_slot_and_of_an_empty_memory() -> None:
    one = analyzer.compute_memory_efficiency(torch.tensor([0.0, 0.9, 0.0, 0.0]))
    assert (one.utilization, one.evenness) == pytest.approx((0.25, 0.0))
    empty = analyzer.compute_memory_efficiency(torch.zeros(5))
    assert (empty.utilization, empty.evenness) == (0.0, 0.0)
    below = MemoryAnalyzer(threshold=0.5).compute_memory_efficiency(torch.full((4,), 0.4))
    assert below.utilization == 0.0 and below.evenness == pytest.approx(1.0)


def test_memory_written_once_and_never_changed_is_perfectly_stable() -> None:
    written = torch.randn(1, 2, 6, 4).expand(5, 2, 6, 4)  # (T, B, N, W), the same every step
    result = analyzer.compute_memory_stability(written)
    assert result.stability == 1.0
    assert result.drift.shape == (4,) and (result.drift == 0).all()


def test_stability_of_a_memory_negated_every_step_is_zero_and_empty_is_stable() -> None:
    base = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(0))
    flipping = torch.stack([base, -base, base])
    # d_t = 2|M| / (2|M| + eps): 1 up to eps / |M| (eps keeps an empty memory defined)
    assert analyzer.compute_memory_stability(flipping).stability == pytest.approx(0.0, abs=1e-6)
    assert analyzer.compute_memory_stability(torch.zeros(3, 2, 6, 4)).stability == 1.0


def test_stability_counts_half_the_steps_changing_a_quarter_of_the_rows() -> None:
    first = torch.ones(4, 3)
    second = first.clone()
    second[0] = -1.0  # one of four equal rows negated: ||dM|| = 2 sqrt(3), ||M|| = sqrt(12)
    contents = torch.stack([first, second, second])
    drift = analyzer.compute_memory_stability(contents).drift
    expected = 2 * math.sqrt(3) / (2 * math.sqrt(12))
    assert drift.tolist() == pytest.approx([expected, 0.0])


def test_retrieval_accuracy_of_perfect_and_of_shuffled_recall() -> None:
    values = torch.randn(3, 5, 8)
    assert analyzer.compute_retrieval_accuracy(values, values) == 1.0
    assert analyzer.compute_retrieval_accuracy(values, values * 3 + 0.01) == 1.0
    assert analyzer.compute_retrieval_accuracy(values, values.roll(1, dims=1)) == 0.0
    half = values.clone()
    half[:, :2] = values[:, 2:4]  # reads 0 and 1 return the values of 2 and 3
    assert analyzer.compute_retrieval_accuracy(values, half) == pytest.approx(3 / 5)
    with pytest.raises(ValueError):
        analyzer.compute_retrieval_accuracy(values, values[:, :4])


def test_retrieval_accuracy_of_a_real_key_value_lookup() -> None:
    """Top-1 retrieval over stored (key, value) pairs, queried with the stored keys."""
    generator = torch.Generator().manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(2, 1, 12, 16, generator=generator), dim=-1)
    values = torch.randn(2, 1, 12, 16, generator=generator)
    read, _ = knn_attention(keys, keys, values, torch.ones(2, 12), top_k=1, eps=0.0)
    assert analyzer.compute_retrieval_accuracy(values, read) == 1.0
    blurred, _ = knn_attention(keys * 0, keys, values, torch.ones(2, 12), top_k=12, eps=0.0)
    assert analyzer.compute_retrieval_accuracy(values, blurred) < 0.5  # every read alike


def test_summary_of_a_recording_and_usage_from_writes() -> None:
    steps, slots = 4, 4
    writes = torch.eye(slots)[:steps].reshape(steps, 1, 1, slots)  # step t writes slot t
    contents = torch.ones(2, 1, slots, 3)
    recording = Recording(
        memory="toy",
        series={"write_weights": writes, "read_weights": torch.full((steps, 1, 2, slots), 0.25)},
        contents={"memory": contents},
        content_steps=torch.tensor([1, steps]),
    )
    usage, source = analyzer.usage(recording)
    assert source == "cumulative writes"
    assert usage[:, 0].tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    summary = analyzer.summarize(recording)
    assert summary["utilization"] == 1.0 and summary["evenness"] == pytest.approx(1.0)
    assert summary["stability"] == 1.0
    assert summary["write_entropy"] == pytest.approx(0.0, abs=1e-12)
    assert summary["read_entropy"] == pytest.approx(math.log(slots))
    recording.series["usage"] = torch.zeros(steps, 1, slots)  # a usage of its own wins
    assert analyzer.summarize(recording)["utilization"] == 0.0


def test_the_examples_of_docs_analysis_run(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    doc = Path(__file__).resolve().parents[1] / "docs" / "analysis.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "analysis_doc"}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for index, block in enumerate(blocks):
            exec(compile(block, f"{doc.name}, block {index + 1}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "attention.png").is_file()
