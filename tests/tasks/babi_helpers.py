"""Helpers for the bAbI tests: the raw files read by plain string handling, written
independently of ``nma_tasks.babi_data``."""

from __future__ import annotations

from pathlib import Path

import nma_tasks

RAW = Path(nma_tasks.__file__).parent / "data" / "babi" / "en"


def raw_file(task: int, split: str) -> str:
    """A shipped file's text, found by its number prefix."""
    (path,) = RAW.glob(f"qa{task}_*_{split}.txt")
    return path.read_text()


def words(text: str) -> list[str]:
    """Lower-case words with ``.``, ``?`` and ``,`` apart."""
    for mark in ".?,":
        text = text.replace(mark, f" {mark} ")
    return text.lower().split()


def raw_examples(task: int, split: str) -> list[tuple[list[list[str]], list[str], str]]:
    """(story sentences so far as words, question words, answer) of every question."""
    out, story = [], []
    for line in raw_file(task, split).splitlines():
        number, rest = line.split(" ", 1)
        if number == "1":
            story = []
        if "\t" in rest:
            question, answer = rest.split("\t")[:2]
            out.append(([list(s) for s in story], words(question), answer))
        else:
            story.append(words(rest))
    return out


def raw_vocabulary(tasks: list[int]) -> set[str]:
    """Every word of the tasks' training files, answers and line IDs left out."""
    vocabulary: set[str] = set()
    for task in tasks:
        for line in raw_file(task, "train").splitlines():
            text = line.split(" ", 1)[1].split("\t")[0]
            vocabulary.update(words(text))
    return vocabulary
