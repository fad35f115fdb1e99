"""Continual learning on your own data with ``ContinualLearningTrainer``: split digits.

scikit-learn's digits, read row by row (8 steps of 8 pixels), cut into tasks by class
pairs — {0, 1}, {2, 3}, ..., {8, 9} — learned one after another. Each task is a
two-way choice answered by a head of its own (``ContinualLearningModel``: the
task-incremental setting). After every task the model is tested on all of them: the
accuracy matrix R, and ACC, BWT (negative: forgetting), FWT and forgetting:

    python examples/continual_digits.py                        # EWC
    python examples/continual_digits.py --regularizer none     # fine-tuning: forgets more
    python examples/continual_digits.py --regularizer si,replay
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nma import ContinualLearningModel, ContinualLearningTrainer
from nma.training import last_step


def split_digits(
    tasks: int, batch_size: int, limit: int | None, seed: int
) -> list[tuple[DataLoader, DataLoader]]:
    """Per task ``t``, train and held-out loaders of the digits ``2t`` and ``2t + 1``:
    ``(B, 8, 8)`` row sequences and labels 0 or 1 (which of the two); 25% held out."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    loaders = []
    for t in range(tasks):
        chosen = (labels == 2 * t) | (labels == 2 * t + 1)
        x, y = images[chosen], labels[chosen] - 2 * t
        train_x, test_x, train_y, test_y = train_test_split(
            x, y, test_size=0.25, random_state=seed, stratify=y
        )
        generator = torch.Generator().manual_seed(seed + t)
        train = DataLoader(
            TensorDataset(train_x, train_y),
            batch_size=batch_size,
            shuffle=True,
            generator=generator,
        )
        loaders.append((train, DataLoader(TensorDataset(test_x, test_y), batch_size=256)))
    return loaders


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Train on the tasks in turn; print and return R and the metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5, help="class pairs, 1 to 5")
    parser.add_argument("--regularizer", default="ewc", help="names joined by commas, or none")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per task")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--memory-size", type=int, default=32)
    parser.add_argument("--memory-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    tasks = split_digits(args.tasks, args.batch_size, args.limit, args.seed)
    model = ContinualLearningModel(
        8, args.hidden_size, args.memory_size, args.memory_dim, args.tasks,
        output_size=2, batch_first=True,
    )  # fmt: skip
    regularizers = [] if args.regularizer == "none" else args.regularizer.split(",")
    trainer = ContinualLearningTrainer(
        model,
        torch.optim.Adam(model.parameters(), lr=args.lr),
        nn.CrossEntropyLoss(),
        regularizers=regularizers,
        device="auto",
        eval_loaders=[held_out for _, held_out in tasks],  # every task known: full R, FWT
        output=last_step,
        progress=not args.quiet,
    )
    for t, (train_loader, held_out) in enumerate(tasks):
        trainer.train_task(t, train_loader, held_out, epochs=args.epochs)
    trainer.print(Console())  # R with b, then ACC, BWT, FWT, forgetting
    metrics = trainer.metrics()
    print("  ".join(f"{name} {value:+.3f}" for name, value in metrics.items()))
    return {"accuracy_matrix": trainer.accuracy_matrix, "metrics": metrics}


if __name__ == "__main__":
    main()
