"""Reading the bAbI question-answering files (Weston et al. 2015): file names, the
parser, and where the files come from (the 1k set shipped with ``nma-tasks``, or a
directory the user gives).

A file is a sequence of numbered lines. ``ID text`` is a story sentence;
``ID question<TAB>answer<TAB>supporting IDs`` is a question about the sentences
before it. ID 1 starts a new story. Supporting IDs are the line IDs of the sentences
that answer the question.

Tokens: the text lower-cased and split into words, with ``.`` and ``?`` (and any
other punctuation) kept as tokens of their own: ``"Where is Mary?"`` is
``("where", "is", "mary", "?")``. Answers are kept whole, as written (``"n,w"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TASK_NAMES: dict[int, str] = {
    1: "single-supporting-fact",
    2: "two-supporting-facts",
    3: "three-supporting-facts",
    4: "two-arg-relations",
    5: "three-arg-relations",
    6: "yes-no-questions",
    7: "counting",
    8: "lists-sets",
    9: "simple-negation",
    10: "indefinite-knowledge",
    11: "basic-coreference",
    12: "conjunction",
    13: "compound-coreference",
    14: "time-reasoning",
    15: "basic-deduction",
    16: "basic-induction",
    17: "positional-reasoning",
    18: "size-reasoning",
    19: "path-finding",
    20: "agents-motivations",
}
"""The 20 tasks by number, as named in the release's file names."""

FileSplit = str  # "train" or "test"

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased words, with each punctuation mark a token of its own."""
    return tuple(_TOKEN.findall(text.lower()))


def file_name(task: int, split: FileSplit) -> str:
    """The release's name of a task's ``"train"`` or ``"test"`` file."""
    return f"qa{task}_{TASK_NAMES[task]}_{split}.txt"


@dataclass(eq=False)
class Story:
    """The sentences of one story, in order, with their line IDs in the file."""

    sentences: list[tuple[str, ...]] = field(default_factory=list)
    line_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Question:
    """One question with the story it is asked about.

    Attributes:
        task: the task number (1-20).
        story: the whole story the question belongs to (shared by its questions).
        end: how many of the story's sentences come before the question; the
            question is about ``story.sentences[:end]``.
        tokens: the question's tokens.
        answer: the answer as written in the file (``"n,w"`` for several words).
        supporting: the line IDs of the supporting sentences.
        line_id: the question's own line ID.
    """

    task: int
    story: Story
    end: int
    tokens: tuple[str, ...]
    answer: str
    supporting: tuple[int, ...]
    line_id: int

    @property
    def context(self) -> list[tuple[str, ...]]:
        """The story's sentences before the question."""
        return self.story.sentences[: self.end]

    def supporting_facts(self) -> list[tuple[str, ...]]:
        """The supporting sentences, in the order the file lists them."""
        where = {line: i for i, line in enumerate(self.story.line_ids[: self.end])}
        return [self.story.sentences[where[line]] for line in self.supporting]


class BabiFormatError(ValueError):
    """A line that does not follow the bAbI file format."""


def parse(text: str, task: int, source: str = "<text>") -> list[Question]:
    """The questions of one bAbI file, in file order.

    Raises:
        BabiFormatError: naming ``source`` and the line, for a line without an ID,
            an ID that is neither 1 nor one more than the previous one, a question
            without an answer, or a supporting ID that is not an earlier sentence.
    """
    questions: list[Question] = []
    story = Story()
    previous = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        where = f"{source}, line {number}"
        if not head.isdigit():
            raise BabiFormatError(f"{where}: expected 'ID text', got {raw!r}.")
        line_id = int(head)
        if line_id == 1:
            story = Story()
        elif line_id != previous + 1:
            raise BabiFormatError(
                f"{where}: line ID {line_id} follows {previous} (expected {previous + 1} or 1)."
            )
        previous = line_id
        if "\t" not in rest:
            story.sentences.append(tokenize(rest))
            story.line_ids.append(line_id)
            continue
        fields = rest.split("\t")
        if len(fields) < 2 or not fields[1].strip():
            raise BabiFormatError(f"{where}: a question without an answer: {raw!r}.")
        supporting = tuple(int(s) for s in fields[2].split()) if len(fields) > 2 else ()
        known = set(story.line_ids)
        if any(s not in known for s in supporting):
            raise BabiFormatError(
                f"{where}: supporting IDs {supporting} are not all earlier sentences."
            )
        questions.append(
            Question(
                task=task,
                story=story,
                end=len(story.sentences),
                tokens=tokenize(fields[0]),
                answer=fields[1].strip(),
                supporting=supporting,
                line_id=line_id,
            )
        )
    return questions


def shipped_dir() -> Traversable:
    """The 1k English set shipped inside ``nma_tasks`` (``data/babi/en``)."""
    return resources.files("nma_tasks") / "data" / "babi" / "en"


def missing_files(tasks: list[int], splits: list[FileSplit], data_dir: str) -> list[str]:
    """Names of the files of ``tasks`` × ``splits`` absent from ``data_dir``
    (empty: the shipped set, which is complete)."""
    if not data_dir:
        return []
    root = Path(data_dir).expanduser()
    return [
        file_name(task, split)
        for task in tasks
        for split in splits
        if not (root / file_name(task, split)).is_file()
    ]


def read_text(task: int, split: FileSplit, data_dir: str = "") -> str:
    """The text of a task's file: from ``data_dir``, or the shipped set if empty."""
    name = file_name(task, split)
    if data_dir:
        return (Path(data_dir).expanduser() / name).read_text(encoding="utf-8")
    return (shipped_dir() / name).read_text(encoding="utf-8")


@lru_cache(maxsize=64)
def load(task: int, split: FileSplit, data_dir: str = "") -> tuple[Question, ...]:
    """The parsed questions of a task's file (cached: files are read once a process)."""
    source = file_name(task, split)
    return tuple(parse(read_text(task, split, data_dir), task, source))
