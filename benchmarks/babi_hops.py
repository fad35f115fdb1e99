"""Where a trained End-To-End Memory Network looks, hop by hop, on one bAbI task.

Usage::

    python benchmarks/babi_hops.py RUN_DIR TASK [--questions 200] [--show 4]

``RUN_DIR`` is a run directory (``nma run --out RUN_DIR``) of the ``kv`` memory with
``hop_embeddings = "adjacent"`` on ``babi``, with a checkpoint. For the first
``--questions`` test questions of bAbI task ``TASK`` it prints the error, and per hop
``k`` the mean attention weight on the question's supporting sentences (bAbI marks
them), for the questions answered right and wrong; then, for ``--show`` wrong and right
questions, the three sentences each hop weighs most. Hop ``k``'s weights are those of
the memory's own attention run for ``k`` hops (:func:`adjacent_hop_attention` on
``E^0 .. E^k``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console

from nma.registry import get_registry
from nma.run import resume_run
from nma_plugins.memories.kv_attention import adjacent_hop_attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("task", type=int)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--show", type=int, default=4)
    args = parser.parse_args()

    run = resume_run(args.run_dir, get_registry(), Console(stderr=True), {}, rewind=False)
    model, task, memory = run.model.eval(), run.parts.task, run.model.memory
    c = memory.config
    questions = [q for q in task.eval_questions if q.task == args.task][: args.questions]
    batch = task.encode_questions(questions)
    with torch.no_grad():
        logits, info = task.answer_step(model(batch.inputs)[0], batch)
        right = logits.argmax(-1) == info[:, 0].long()
        hidden, _ = model.controller(batch.inputs, None)
        key, value, gate, query = memory._split(model.interface(hidden))  # (T, B, ...)
    print(f"step {run.step}, task {args.task}: error {1 - right.float().mean():.3f}")

    support = {True: torch.zeros(c.hops), False: torch.zeros(c.hops)}
    shown = {True: 0, False: 0}
    for b, q in enumerate(questions):
        start = max(0, q.end - task.config.max_sentences)
        story, ids = q.story.sentences[start : q.end], q.story.line_ids[start : q.end]
        n = len(story)
        embeddings = torch.cat(
            [key[:n, b, None], value[:n, b].unflatten(-1, (c.hops, memory.width))], dim=1
        ).unsqueeze(0)  # (1, N, K + 1, D)
        supporting = torch.tensor([i in q.supporting for i in ids])
        lines = []
        for k in range(1, c.hops + 1):
            _, weights = adjacent_hop_attention(
                query[n, b].view(1, 1, -1),
                embeddings[:, :, : k + 1],
                gate[:n, b].unsqueeze(0),
                k,
                c.eps,
                scaled=c.scaled_scores,
                gates=(memory.gate_weight, memory.gate_bias) if c.hop_gates else None,
            )
            w = weights[0, 0]
            support[bool(right[b])][k - 1] += float(w[supporting].sum())
            top = torch.topk(w, min(3, n))
            picks = zip(top.values.tolist(), top.indices.tolist(), strict=True)
            lines.append(
                f"  hop {k}: " + "; ".join(f"{p:.2f} {' '.join(story[i])}" for p, i in picks)
            )
        if shown[bool(right[b])] < args.show:
            shown[bool(right[b])] += 1
            verdict = "right" if right[b] else "wrong"
            print(f"{' '.join(q.tokens)} -> {q.answer} ({verdict})", *lines, sep="\n")
    for ok in (True, False):
        count = int((right == ok).sum())
        if count:
            mass = ", ".join(f"{float(m) / count:.2f}" for m in support[ok])
            print(
                f"{'right' if ok else 'wrong'} ({count}): mean weight on the supporting "
                f"sentences per hop: {mass}"
            )


if __name__ == "__main__":
    main()
