"""SAM's nearest-neighbour search: exact top-K and the random-hyperplane LSH index."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nma_plugins.memories.sam_index import LSHIndex, candidate_search, exact_search

CPU = torch.device("cpu")
EPS = 1e-6


# --- independent reference -------------------------------------------------------------------


def ref_cosine(u, v) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)) + EPS)


def ref_top(query, memory, slots, k: int) -> list[int]:
    """The k distinct slots among ``slots`` (-1 = none) most similar to ``query``."""
    pool = sorted({s for s in slots if s >= 0})
    return sorted(pool, key=lambda s: -ref_cosine(query, memory[s]))[:k]


def ref_code(vector, planes) -> list[int]:
    """Bucket per table: bit j is [p_j . v > 0], bucket = sum_j bit_j 2^j."""
    tables, width, bits = planes.shape
    codes = []
    for table in range(tables):
        code = 0
        for j in range(bits):
            if sum(vector[w] * planes[table, w, j] for w in range(width)) > 0:
                code += 2**j
        codes.append(code)
    return codes


def make_index(width=4, tables=3, bits=3, bucket_size=2, probes=0, seed=0) -> LSHIndex:
    torch.manual_seed(seed)
    return LSHIndex(width, tables, bits, bucket_size, probes).double()


# --- exact and candidate search --------------------------------------------------------------


def test_exact_search_matches_reference() -> None:
    rng = np.random.default_rng(0)
    memory, queries = rng.normal(size=(2, 9, 4)), rng.normal(size=(2, 3, 4))
    got = exact_search(torch.tensor(memory), torch.tensor(queries), 4, EPS)
    assert got.shape == (2, 3, 4) and got.dtype == torch.int64
    for b in range(2):
        for h in range(3):
            assert got[b, h].tolist() == ref_top(queries[b, h], memory[b], range(9), 4)


def test_candidate_search_masks_repeats_and_empties() -> None:
    rng = np.random.default_rng(1)
    memory, queries = rng.normal(size=(2, 9, 4)), rng.normal(size=(2, 2, 4))
    candidates = rng.integers(-1, 9, size=(2, 2, 12))
    candidates[..., :3] = [2, 5, 7]  # at least 3 distinct slots everywhere
    got = candidate_search(
        torch.tensor(memory), torch.tensor(queries), torch.tensor(candidates), 3, EPS
    )
    for b in range(2):
        for h in range(2):
            row = got[b, h].tolist()
            assert len(set(row)) == 3
            assert row == ref_top(queries[b, h], memory[b], list(candidates[b, h]), 3)


# --- the LSH index ---------------------------------------------------------------------------


def test_index_validation_and_state() -> None:
    with pytest.raises(ValueError, match="bits"):
        LSHIndex(4, 2, 0, 4, 0)
    with pytest.raises(ValueError, match="probes"):
        LSHIndex(4, 2, 3, 4, 4)
    index = make_index()
    assert index.planes.shape == (3, 4, 3) and index.buckets == 8
    # The hyperplanes follow from the seed alone (not from torch's global generator).
    assert "planes" not in index.state_dict()
    torch.manual_seed(123)
    assert torch.equal(
        LSHIndex(4, 3, 3, 2, 0, seed=7).planes, LSHIndex(4, 3, 3, 2, 0, seed=7).planes
    )
    assert not torch.equal(LSHIndex(4, 3, 3, 2, 0, seed=7).planes, LSHIndex(4, 3, 3, 2, 0).planes)
    table, fill = index.empty(2, CPU)
    assert table.shape == (2, 3, 8 * 2 + 1) and table.dtype == torch.int32
    assert bool((table == -1).all())
    assert fill.shape == (2, 3, 8) and bool((fill == 0).all())


def test_codes_match_reference() -> None:
    index = make_index(bits=5, tables=4)
    vectors = np.random.default_rng(2).normal(size=(2, 6, 4))
    got = index.codes(torch.tensor(vectors))
    assert got.shape == (2, 6, 4)
    planes = index.planes.numpy()
    for b in range(2):
        for m in range(6):
            assert got[b, m].tolist() == ref_code(vectors[b, m], planes)


def test_insert_fills_rings_and_drops_the_oldest() -> None:
    # One table, one bit, buckets of 2 entries. Vectors +v fall in one bucket, -v in the
    # other (a hyperplane through 0 separates v from -v unless p.v = 0).
    index = make_index(width=2, tables=1, bits=1, bucket_size=2)
    v = torch.tensor([1.0, 0.5], dtype=torch.float64)
    plus = int(index.codes(v.view(1, 1, 2))[0, 0, 0])
    minus = 1 - plus
    table, fill = index.empty(1, CPU)
    # Three entries for one bucket in one call: only the last two are kept.
    index.insert(
        table, fill, torch.tensor([[7, 8, 9, 3]]), torch.stack([v, v, v, -v]).view(1, 4, 2)
    )
    # Entries 0, 1, 2 of the bucket go to ring positions 0, 1, 0: 9 overwrote 7.
    assert table[0, 0, plus * 2 : plus * 2 + 2].tolist() == [9, 8]
    assert table[0, 0, minus * 2 : minus * 2 + 2].tolist() == [3, -1]
    assert fill[0, 0, plus].item() == 3 and fill[0, 0, minus].item() == 1
    # The ring goes on where it stopped: entry 4 of the bucket overwrites position 1.
    index.insert(table, fill, torch.tensor([[11]]), v.view(1, 1, 2))
    assert table[0, 0, plus * 2 : plus * 2 + 2].tolist() == [9, 11]
    index.insert(table, fill, torch.tensor([[4]]), (-v).view(1, 1, 2))
    assert table[0, 0, minus * 2 : minus * 2 + 2].tolist() == [3, 4]
    assert fill[0, 0].tolist() == ([2, 4] if plus else [4, 2])


def test_candidates_and_probes_match_reference() -> None:
    index = make_index(width=4, tables=2, bits=4, bucket_size=3, probes=2)
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(1, 20, 4))
    table, fill = index.empty(1, CPU)
    index.insert(table, fill, torch.arange(20).view(1, 20), torch.tensor(rows))
    queries = rng.normal(size=(1, 2, 4))
    got = index.candidates(table, torch.tensor(queries))
    assert got.shape == (1, 2, 2 * 3 * 3) and got.dtype == torch.int64
    planes = index.planes.numpy()
    codes = [ref_code(rows[0, i], planes) for i in range(20)]
    for h in range(2):
        want: list[int] = []
        for table_no in range(2):
            proj = [
                sum(queries[0, h, w] * planes[table_no, w, j] for w in range(4)) for j in range(4)
            ]
            code = ref_code(queries[0, h], planes)[table_no]
            weakest = sorted(range(4), key=lambda j: abs(proj[j]))[:2]
            for bucket in [code] + [code ^ (1 << j) for j in weakest]:
                members = [i for i in range(20) if codes[i][table_no] == bucket][-3:]
                want.extend(members)
        found = [s for s in got[0, h].tolist() if s >= 0]
        assert sorted(found) == sorted(want)


def test_search_finds_exact_top_k_on_easy_cases() -> None:
    # Easy: 2 x 4 planted rows at cosine > 0.99 from each query, 300 random others.
    torch.manual_seed(4)
    index = LSHIndex(16, tables=8, bits=6, bucket_size=16, probes=2)
    batch, slots, k = 2, 300, 4
    memory = torch.randn(batch, slots, 16)
    queries = torch.randn(batch, 2, 16)
    planted = torch.tensor([[[10, 50, 90, 130], [20, 60, 100, 140]]] * batch)
    for b in range(batch):
        for h in range(2):
            for j, slot in enumerate(planted[b, h]):
                memory[b, slot] = queries[b, h] * (1 + j) + 0.01 * torch.randn(16)
    table, fill = index.empty(batch, CPU)
    index.insert(table, fill, torch.arange(slots).expand(batch, -1), memory)
    fallback = torch.arange(k).expand(batch, 2, k)
    got = index.search(table, memory, queries, fallback, k, EPS)
    want = exact_search(memory, queries, k, EPS)
    assert torch.equal(got, want)
    assert torch.equal(got.sort(-1).values, planted.sort(-1).values)


def test_search_needs_only_the_fallback() -> None:
    # An empty index still returns K distinct slots: the fallback ones, best first.
    index = make_index(width=3, tables=2, bits=2, bucket_size=2)
    rng = np.random.default_rng(5)
    memory = torch.tensor(rng.normal(size=(1, 8, 3)))
    queries = torch.tensor(rng.normal(size=(1, 1, 3)))
    table, _ = index.empty(1, CPU)
    got = index.search(table, memory, queries, torch.tensor([[[6, 1, 3]]]), 3, EPS)
    assert got[0, 0].tolist() == ref_top(queries[0, 0].tolist(), memory[0].tolist(), [6, 1, 3], 3)
