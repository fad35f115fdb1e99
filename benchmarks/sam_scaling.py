"""Scaling benchmark: the cost of a SAM step against the number of memory slots.

Usage::

    python benchmarks/sam_scaling.py                   # N = 1e3, 1e4, 1e5, 1e6
    python benchmarks/sam_scaling.py --sizes 1000 10000 --repeats 10 --no-write

For every size ``N`` it builds, through the registry and the configuration resolver
exactly as ``nma run`` does, an LSTM controller (100 units) driving a ``sam`` memory
(``W = 20``, one read head, ``K = 4``, LSH index), batch 8, on the CPU with torch's
default number of threads, and times after a warm-up (median of repeats; the sizes are
timed in interleaved rounds so that load on a shared machine affects them alike):

* **step**: one forward + backward of a single step of the assembled model (controller,
  memory, output head; loss = mean squared output), from a detached state, as in
  truncated back-propagation with a window of one step;
* **seq10**: forward + backward of a 10-step sequence from a detached state, divided
  by 10.

The ``(B, N, W)`` memory and its index are allocated once, by ``initial_state``, before
the timing starts; that allocation is ``O(N)`` and is reported separately, not in the
step times. The same is timed for ``sam`` with exact search and for the dense ``ntm``
memory (128 x 20 by default, here with ``N`` slots) at the sizes that fit in time and
memory. Finally the recall of the LSH index (fraction of the exact top-K it returns)
is measured on a memory of ``N`` random rows.

Writes the table to ``benchmarks/results/sam-scaling.md`` (``--out`` changes the name)
with the machine, its load and the command, unless ``--no-write``. ``--threads`` sets
torch's thread count (default: torch's own default).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine import machine

from nma import detach_state
from nma.build import build_components
from nma.config import resolve
from nma.registry import get_registry

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 8
SEQUENCE = 10


def build_model(memory: str, options: dict) -> torch.nn.Module:
    """The assembled model of ``nma run --memory MEMORY --controller lstm --task copy``."""
    registry = get_registry()
    raw = {
        "components": {"memory": memory, "controller": "lstm", "task": "copy"},
        "memory": options,
        "controller": {"hidden_size": 100},
    }
    return build_components(resolve(raw, registry), registry).model


def median_ms(fn: Callable[[], None], repeats: int, warmup: int, budget_s: float) -> float:
    """Median wall time of ``fn`` in milliseconds, after ``warmup`` calls.

    Stops early (after at least 3 timed calls) once ``budget_s`` seconds are spent.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (len(times) < 3 or spent < budget_s):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return 1e3 * statistics.median(times)


def prepare(memory: str, options: dict) -> tuple[float, Callable[[int], Callable[[], None]]]:
    """Build a model and its state; return the allocation time (ms) and a factory of
    closures that run forward + backward of a ``steps``-step sequence from the current
    (detached) state. All closures of one model share its state."""
    torch.manual_seed(0)
    model = build_model(memory, options)
    start = time.perf_counter()
    holder = {"state": model.initial_state(BATCH)}
    allocation = 1e3 * (time.perf_counter() - start)

    def make(steps: int) -> Callable[[], None]:
        inputs = torch.randn(steps, BATCH, model.input_size)

        def run() -> None:
            state = detach_state(holder["state"])
            outputs = []
            for x in inputs:
                output, state = model.step(x, state)
                outputs.append(output)
            torch.stack(outputs).square().mean().backward()
            holder["state"] = state

        return run

    return allocation, make


def time_model(
    memory: str, options: dict, steps: int, repeats: int, budget_s: float
) -> tuple[float, float]:
    """``(allocation ms, forward+backward ms per step)`` for sequences of ``steps`` steps."""
    allocation, make = prepare(memory, options)
    per_call = median_ms(make(steps), repeats, warmup=max(2, 20 // steps), budget_s=budget_s)
    return allocation, per_call / steps


def time_interleaved(
    sizes: list[int], repeats: int, chunk: int = 10
) -> dict[int, tuple[float, float, float]]:
    """``{N: (allocation ms, step ms, seq10 ms per step)}`` for ``sam`` with LSH.

    All sizes are built first and timed in rounds (``chunk`` calls of each size and
    length per round), so a change of load on a shared machine affects every size
    alike; the medians are over all rounds.
    """
    prepared = {n: prepare("sam", {"slots": n, "index": "lsh"}) for n in sizes}
    runs = {(n, steps): prepared[n][1](steps) for n in sizes for steps in (1, SEQUENCE)}
    for (_, steps), run in runs.items():
        for _ in range(max(2, 20 // steps)):
            run()
    samples: dict[tuple[int, int], list[float]] = {key: [] for key in runs}
    for _ in range(-(-repeats // chunk)):
        for key, run in runs.items():
            for _ in range(chunk):
                start = time.perf_counter()
                run()
                samples[key].append(time.perf_counter() - start)
    return {
        n: (
            prepared[n][0],
            1e3 * statistics.median(samples[(n, 1)]),
            1e3 * statistics.median(samples[(n, SEQUENCE)]) / SEQUENCE,
        )
        for n in sizes
    }


def recall(slots: int, queries: int = 256, k: int = 4) -> tuple[float, float, float]:
    """How well the LSH index finds the exact top-K in a memory of ``slots`` random rows.

    Returns recall@K (the fraction of the exact top K returned) for random keys and for
    planted keys (a stored row plus noise, cosine about 0.9 to it), and the fraction of
    near-duplicate keys (cosine about 0.99 to a stored row) whose exact nearest row is
    returned first. Batch 1, ``queries`` keys of each kind.
    """
    from nma_plugins.memories.sam import SAMMemory
    from nma_plugins.memories.sam_index import exact_search

    torch.manual_seed(1)
    memory = SAMMemory(SAMMemory.Config(slots=slots, index="lsh"))
    assert memory.index is not None
    contents = torch.randn(1, slots, 20)
    state = memory.load_memory(
        memory.initial_state(1, torch.device("cpu"), torch.float32), contents
    )
    fallback = torch.arange(k).expand(1, queries, k)

    def search(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        exact = exact_search(state.memory, keys, k, 1e-6)
        return exact, memory.index.search(state.table, state.memory, keys, fallback, k, 1e-6)

    def near(noise_scale: float) -> torch.Tensor:
        rows = contents[0, torch.randint(slots, (queries,))].unsqueeze(0)
        noise = torch.randn(1, queries, 20)
        unit = rows / rows.norm(dim=-1, keepdim=True)
        return unit + noise_scale * noise / noise.norm(dim=-1, keepdim=True)

    hits = []
    for keys in (torch.randn(1, queries, 20), near(0.45)):
        exact, approx = search(keys)
        hits.append(float((exact.unsqueeze(-1) == approx.unsqueeze(-2)).any(-1).float().mean()))
    exact, approx = search(near(0.14))
    hits.append(float((exact[..., 0] == approx[..., 0]).float().mean()))
    return hits[0], hits[1], hits[2]


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**3, 10**4, 10**5, 10**6])
    parser.add_argument("--ntm-max", type=int, default=10**5, help="largest N timed for ntm")
    parser.add_argument("--exact-max", type=int, default=10**5, help="largest N for exact sam")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--budget", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--no-recall", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: default")
    parser.add_argument("--out", default="sam-scaling", help="results/OUT.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    command = "python benchmarks/sam_scaling.py" + "".join(f" {shlex.quote(a)}" for a in argv)

    sam = time_interleaved(args.sizes, args.repeats)
    rows = []
    for slots in args.sizes:
        alloc, step, seq = sam[slots]
        exact = ntm = None
        if slots <= args.exact_max:
            options = {"slots": slots, "index": "exact"}
            _, exact = time_model("sam", options, 1, args.repeats, args.budget)
        if slots <= args.ntm_max:
            _, ntm = time_model("ntm", {"slots": slots}, 1, args.repeats, args.budget)
        hits = (None, None, None) if args.no_recall else recall(slots)
        rows.append((slots, alloc, step, seq, exact, ntm, *hits))
        print(
            f"N={slots:>9,}  alloc {alloc:8.1f} ms  sam step {step:7.2f} ms  seq10 {seq:7.2f} "
            f"ms/step  exact {fmt(exact)}  ntm {fmt(ntm)}  recall {'/'.join(fmt(h) for h in hits)}",
            flush=True,
        )

    base_step, base_seq = rows[0][2], rows[0][3]
    header = (
        "| N | sam step (ms) | × N=1e3 | sam seq10 (ms/step) | × N=1e3 | sam exact step (ms) "
        "| ntm step (ms) | alloc (ms) | LSH recall@4 random / planted "
        "| LSH top-1 near-duplicate |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [
        f"| {n:,} | {step:.2f} | {step / base_step:.2f} | {seq:.2f} | {seq / base_seq:.2f} "
        f"| {fmt(exact)} | {fmt(ntm)} | {alloc:.0f} | {fmt(r1)} / {fmt(r2)} | {fmt(r3)} |"
        for n, alloc, step, seq, exact, ntm, r1, r2, r3 in rows
    ]
    table = "\n".join([header, *lines])
    print()
    print(table)
    last = rows[-1]
    verdict = (
        f"At N = {last[0]:,} the single-step cost is {last[2] / base_step:.2f}× and the "
        f"10-step cost {last[3] / base_seq:.2f}× the cost at N = {rows[0][0]:,} "
        f"(target: under 4×)."
    )
    print(verdict)
    if args.no_write:
        return 0
    load_after = os.getloadavg()
    load = (
        f"1-minute load average {load_before[0]:.1f} before the run and {load_after[0]:.1f} "
        f"after it, on {os.cpu_count()} cores (a machine shared with other users)"
    )
    text = f"""# {args.out}

Command: `{command}`

Machine: {machine()}; {load}.

Model: LSTM controller (100 units) + `sam` memory (W = 20, one read head, K = 4,
`index = "lsh"`: 8 tables, `ceil(log2(N / 16))` bits, buckets of 16, 2 probes),
batch 8, built through the registry as `nma run --memory sam --controller lstm --task
copy` builds it. Times are medians after a warm-up, on the CPU, with the torch thread
count given above.

- **sam step**: forward + backward of one step of the whole model (controller, memory,
  output head), starting from a detached state (truncated BPTT with a one-step window).
- **sam seq10**: forward + backward of a 10-step sequence, per step.
- **sam exact step**: the same single step with `index = "exact"` (linear in N).
- **ntm step**: the same single step with the dense `ntm` memory of N slots
  (`—`: not run, too slow or too large).
- **alloc**: `initial_state` (the `(8, N, 20)` memory, the maps, the LSH tables),
  `O(N)` once per sequence and **not** included in the step times.
- **LSH recall@4**: the fraction of the exact top 4 that the index returns, on a memory
  of N random Gaussian rows (batch 1, 256 queries): random keys / planted keys (a stored
  row plus noise, cosine ≈ 0.9 to it).
- **LSH top-1 near-duplicate**: the fraction of keys at cosine ≈ 0.99 to a stored row
  whose exact nearest row the index returns first (same memory).

{table}

{verdict}
"""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.out}.md"
    path.write_text(text, encoding="utf-8")
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
