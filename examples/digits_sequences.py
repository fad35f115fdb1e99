"""Train a memory model on your own data: scikit-learn's digits, read row by row.

Each 8×8 image becomes a sequence of 8 steps of 8 pixels; the model reads the rows
one at a time and classifies the digit from its output at the last step. A plain
PyTorch loop over ``DataLoader``s, nothing specific to nma but the model:

    python examples/digits_sequences.py                       # NeuralTuringMachine
    python examples/digits_sequences.py --model DifferentiableNeuralComputer --epochs 20
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nma.models


def digit_loaders(batch_size: int, limit: int | None, seed: int) -> tuple[DataLoader, DataLoader]:
    """Train and test loaders of ``(B, 8, 8)`` row sequences (pixels scaled to [0, 1])
    and ``(B,)`` labels; 25% held out, stratified."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0  # (1797, 8, 8)
    labels = torch.tensor(digits.target, dtype=torch.long)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(
        TensorDataset(train_x, train_y), batch_size=batch_size, shuffle=True, generator=generator
    )
    return train, DataLoader(TensorDataset(test_x, test_y), batch_size=256)


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    """The share of sequences whose last-step output picks the right digit."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for rows, labels in loader:
            logits = model(rows)[0][:, -1]
            correct += int((logits.argmax(dim=-1) == labels).sum())
            total += len(labels)
    model.train()
    return correct / total


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, print one line per epoch, return the last epoch's loss and test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="NeuralTuringMachine", help="a class of nma.models")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--memory-size", type=int, default=32)
    parser.add_argument("--memory-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    train_loader, test_loader = digit_loaders(args.batch_size, args.limit, args.seed)
    model_class = getattr(nma.models, args.model)
    model = model_class(8, args.hidden_size, args.memory_size, args.memory_dim,
                        output_size=10, batch_first=True)  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    loss_sum, batches = 0.0, 0
    for epoch in range(1, args.epochs + 1):
        loss_sum, batches = 0.0, 0
        for rows, labels in train_loader:
            optimizer.zero_grad()
            outputs, _ = model(rows)  # (B, 8, 10): one output per row
            loss = criterion(outputs[:, -1], labels)  # classify after the last row
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            loss_sum, batches = loss_sum + loss.item(), batches + 1
        test_accuracy = accuracy(model, test_loader)
        mean_loss = loss_sum / batches
        print(f"epoch {epoch:3d}  train loss {mean_loss:.4f}  test accuracy {test_accuracy:.3f}")
    return {"loss": loss_sum / batches, "accuracy": accuracy(model, test_loader)}


if __name__ == "__main__":
    main()
