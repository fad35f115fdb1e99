"""Train a memory model on your own data with ``MemoryTrainer``: scikit-learn's digits,
read row by row.

Each 8×8 image becomes a sequence of 8 steps of 8 pixels; the model reads the rows
one at a time and classifies the digit from its output at the last step
(``output=last_step``). The trainer brings progress, gradient clipping, early
stopping on the validation loss, and resumable checkpoints:

    python examples/digits_trainer.py                            # NeuralTuringMachine
    python examples/digits_trainer.py --model DifferentiableNeuralComputer --epochs 20
    python examples/digits_trainer.py --checkpoints runs/digits   # Ctrl-C, then --resume

(examples/digits_sequences.py trains the same models with a plain PyTorch loop.)
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nma.models
from nma import MemoryTrainer
from nma.training import last_step


def digit_loaders(
    batch_size: int, limit: int | None, seed: int
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train, validation and test loaders of ``(B, 8, 8)`` row sequences (pixels in
    [0, 1]) and ``(B,)`` labels: 60% / 15% / 25%, stratified."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0  # (1797, 8, 8)
    labels = torch.tensor(digits.target, dtype=torch.long)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    rest_x, test_x, rest_y, test_y = train_test_split(
        images, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=0.2, random_state=seed, stratify=rest_y
    )
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(
        TensorDataset(train_x, train_y), batch_size=batch_size, shuffle=True, generator=generator
    )
    val = DataLoader(TensorDataset(val_x, val_y), batch_size=256)
    return train, val, DataLoader(TensorDataset(test_x, test_y), batch_size=256)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Train; return the loss history and the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="NeuralTuringMachine", help="a class of nma.models")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--memory-size", type=int, default=32)
    parser.add_argument("--memory-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--patience", type=int, default=3, help="early stopping (epochs)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--checkpoints", default=None, help="a folder for checkpoints")
    parser.add_argument("--resume", action="store_true", help="go on from --checkpoints")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    train_loader, val_loader, test_loader = digit_loaders(args.batch_size, args.limit, args.seed)
    model = getattr(nma.models, args.model)(
        8, args.hidden_size, args.memory_size, args.memory_dim, output_size=10, batch_first=True
    )
    trainer = MemoryTrainer(
        model,
        torch.optim.Adam(model.parameters(), lr=args.lr),
        nn.CrossEntropyLoss(),
        device="auto",
        output=last_step,  # classify after the last row: (B, 8, 10) -> (B, 10)
        grad_clip=10.0,
        patience=args.patience,
        checkpoint_dir=args.checkpoints,
        progress=not args.quiet,
    )
    history = trainer.train(train_loader, val_loader, epochs=args.epochs, resume=args.resume)
    accuracy = trainer.evaluate(test_loader, {"accuracy": nma.training.classification_accuracy})
    print(f"test accuracy {accuracy['accuracy']:.3f} after {history.epochs} epochs")
    return {"history": history, "accuracy": accuracy["accuracy"]}


if __name__ == "__main__":
    main()
