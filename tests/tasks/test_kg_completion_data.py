"""The shipped knowledge graphs and the kg-completion helpers against their definitions:
counts re-derived from the raw files, checksums, the inverse relations, the filter, and
filtered ranks against a brute-force ranking on a tiny hand-made graph."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import sys
from pathlib import Path

import pytest
import torch

import nma_tasks
from nma_tasks.kg_data import (
    DATASETS,
    Neighbourhoods,
    filtered_ranks,
    index_graph,
    known_answers,
    load_graph,
    parse_triples,
    with_inverses,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE = Path(nma_tasks.__file__).parent
DATA = PACKAGE / "data" / "kg"
README_TABLE = {  # the data README's table, as published (pykeen/ConvE)
    "kinships": (104, 25, (8544, 1068, 1074)),
    "nations": (14, 55, (1592, 199, 201)),
    "umls": (135, 46, (5216, 652, 661)),
}


def raw_triples(dataset: str, split: str) -> list[tuple[str, str, str]]:
    """The file's triples, read with nothing but ``str`` methods."""
    lines = (DATA / dataset / f"{split}.txt").read_bytes().decode("ascii").split("\n")
    assert lines[-1] == ""  # ends with a newline
    triples = [tuple(line.split("\t")) for line in lines[:-1]]
    assert all(len(t) == 3 for t in triples)
    return triples  # type: ignore[return-value]


def test_readme_table_is_the_one_the_tests_check():
    text = (DATA / "README.md").read_text()
    rows = re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \| (\d+) / (\d+) / (\d+) \|$", text, re.M)
    table = {name: (int(e), int(r), (int(a), int(b), int(c))) for name, e, r, a, b, c in rows}
    assert table == README_TABLE


@pytest.mark.parametrize("dataset", DATASETS)
def test_counts_match_the_readme_and_the_loader(dataset):
    splits = {s: raw_triples(dataset, s) for s in ("train", "valid", "test")}
    everything = [t for triples in splits.values() for t in triples]
    entities = {x for h, _, t in everything for x in (h, t)}
    relations = {r for _, r, _ in everything}
    sizes = tuple(len(splits[s]) for s in ("train", "valid", "test"))
    assert (len(entities), len(relations), sizes) == README_TABLE[dataset]
    # as the README says: every name occurs in training, no duplicates, no overlap
    train = set(splits["train"])
    assert {x for h, _, t in train for x in (h, t)} == entities
    assert {r for _, r, _ in train} == relations
    assert len(set(everything)) == len(everything)
    assert all(h != t for h, _, t in everything)

    graph = load_graph(dataset)
    assert (graph.num_entities, graph.num_relations) == README_TABLE[dataset][:2]
    assert graph.entities == tuple(sorted(entities))
    for split, triples in splits.items():
        named = [
            (graph.entities[h], graph.relations[r], graph.entities[t])
            for h, r, t in graph.splits[split].tolist()
        ]
        assert named == triples  # same triples, same order


def test_files_are_the_checksummed_ones_and_ship_as_package_data():
    text = (DATA / "README.md").read_text()
    sums = dict(re.findall(r"^\| (\w+/\w+\.txt) \| ([0-9a-f]{64}) \|$", text, re.M))
    files = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*.txt") if p.parent != DATA)
    assert sorted(sums) == files and len(files) == 10
    for name, digest in sums.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["nma_tasks"]
    for path in DATA.rglob("*"):
        if path.is_file():
            relative = str(path.relative_to(PACKAGE))
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_parse_names_the_bad_line():
    assert parse_triples("a\tr\tb\n\nc\ts\td") == [("a", "r", "b"), ("c", "s", "d")]
    with pytest.raises(ValueError, match=r"f\.txt:2: expected head<TAB>relation<TAB>tail"):
        parse_triples("a\tr\tb\na r b\n", "f.txt")


TINY = {
    "train": [("a", "p", "b"), ("a", "p", "c"), ("b", "q", "c"), ("c", "p", "d"), ("a", "q", "a")],
    "valid": [("a", "p", "d")],
    "test": [("a", "p", "e"), ("e", "q", "b")],
}


def tiny():
    return index_graph("tiny", TINY)


def test_inverses_and_the_filter_cover_every_split_both_ways():
    graph = tiny()
    assert graph.entities == ("a", "b", "c", "d", "e") and graph.relations == ("p", "q")
    both = with_inverses(graph.splits["train"], 2)
    assert both.tolist()[5:] == [[1, 2, 0], [2, 2, 0], [2, 3, 1], [3, 2, 2], [0, 3, 0]]
    known = known_answers(graph)
    expected = set()
    for triples in TINY.values():
        for h, r, t in triples:
            expected.add((h, r, t))
            expected.add((t, r + "^-1", h))
    names = [*graph.relations, *(r + "^-1" for r in graph.relations)]
    found = {
        (graph.entities[h], names[r], graph.entities[t]) for h, r, t in known.nonzero().tolist()
    }
    assert found == expected


def brute_force_rank(scores: list[float], answer: int, filtered: set[int]) -> float:
    """Sort the candidates (the answer and every entity not filtered out), highest
    first; the answer's rank is the mean of the positions its tie group occupies."""
    candidates = [e for e in range(len(scores)) if e == answer or e not in filtered]
    ordered = sorted(candidates, key=lambda e: -scores[e])
    positions = [i + 1 for i, e in enumerate(ordered) if scores[e] == scores[answer]]
    return (min(positions) + max(positions)) / 2


def test_filtered_ranks_match_brute_force_with_ties_and_filtered_answers():
    graph = tiny()
    known = known_answers(graph)
    a, b, c, d, e = range(5)
    p, q = 0, 1
    cases = [  # (head, relation, answer, scores)
        ((a, p, e), [0.0, 5.0, 5.0, 9.0, 1.0]),  # b, c, d filtered; a below e -> 1
        ((a, p, e), [3.0, 5.0, 5.0, 9.0, 1.0]),  # a outranks e -> 2
        ((a, p, e), [1.0, 5.0, 5.0, 9.0, 1.0]),  # a ties e -> 1.5
        ((a, p, b), [1.0, 2.0, 2.0, 2.0, 2.0]),  # c, d, e filtered; a below -> 1
        ((e, q, b), [2.0, 2.0, 2.0, 2.0, 2.0]),  # constant: tie with a, c, d, e -> 3
        ((b, q + 2, e), [7.0, 0.0, 7.0, 7.0, 4.0]),  # a, c, d above -> 4
    ]
    expected = [1.0, 2.0, 1.5, 1.0, 3.0, 4.0]
    queries = torch.tensor([case[0] for case in cases])
    scores = torch.tensor([case[1] for case in cases])
    rows = known[queries[:, 0], queries[:, 1]]
    ranks = filtered_ranks(scores, queries[:, 2], rows).tolist()
    for i, ((_, _, answer), values) in enumerate(cases):
        filtered = set(rows[i].nonzero().flatten().tolist())
        assert ranks[i] == brute_force_rank(values, answer, filtered) == expected[i]
    generator = torch.Generator().manual_seed(3)
    for _ in range(200):  # random queries, coarse scores so ties are common
        h, r, t = (int(torch.randint(n, (1,), generator=generator)) for n in (5, 4, 5))
        values = torch.randint(0, 3, (5,), generator=generator).float()
        filtered = set(known[h, r].nonzero().flatten().tolist())
        got = filtered_ranks(values[None], torch.tensor([t]), known[h, r][None]).item()
        assert got == brute_force_rank(values.tolist(), t, filtered)


def test_neighbourhoods_sample_distinct_edges_out_of_the_head_and_skip_the_excluded():
    graph = tiny()
    hoods = Neighbourhoods(graph.splits["train"], 5, 2)
    edges = hoods.edges.tolist()
    assert hoods.degree.tolist() == [4, 2, 3, 1, 0]  # a: (a,p,b) (a,p,c) and a's self-loop twice
    generator = torch.Generator().manual_seed(0)
    heads = torch.tensor([0, 0, 1, 2, 3, 4, 0])
    exclude = torch.tensor([-1, 4, 0, -1, 3, -1, 0])  # triple 4 is the self-loop (a, q, a)
    for _ in range(20):
        chosen, counts = hoods.sample(heads, exclude, 3, generator)
        assert chosen.shape == (7, 3)
        assert counts.tolist() == [3, 2, 1, 3, 0, 0, 3]
        for row, head, skip, count in zip(chosen.tolist(), heads, exclude, counts, strict=True):
            picked = row[:count]
            assert all(x == -1 for x in row[count:])
            assert len(set(picked)) == len(picked)
            assert all(edges[i][0] == head and i % 5 != skip for i in picked)
