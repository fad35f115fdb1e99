"""The bAbI parser on hand-written files, and the shipped 1k set against its raw text."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

import pytest

import nma_tasks
from nma_tasks.babi_data import (
    TASK_NAMES,
    BabiFormatError,
    file_name,
    load,
    parse,
    read_text,
    shipped_dir,
    tokenize,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TASKS_ROOT = Path(nma_tasks.__file__).parent
DATA = TASKS_ROOT / "data" / "babi"

MINI = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel?\thallway\t4
1 The kitchen is east of the garden.
2 The office is north of the kitchen.
3 How do you go from the garden to the office?\te,n\t1 2
4 Sandra picked up the milk.
5 What is Sandra carrying?\tmilk,apple\t4
"""


def test_a_hand_written_file_parses_into_its_questions():
    questions = parse(MINI, task=19, source="mini.txt")
    assert [q.tokens for q in questions] == [
        ("where", "is", "mary", "?"),
        ("where", "is", "daniel", "?"),
        ("how", "do", "you", "go", "from", "the", "garden", "to", "the", "office", "?"),
        ("what", "is", "sandra", "carrying", "?"),
    ]
    assert [q.answer for q in questions] == ["bathroom", "hallway", "e,n", "milk,apple"]
    assert [q.supporting for q in questions] == [(1,), (4,), (1, 2), (4,)]
    assert [q.line_id for q in questions] == [3, 5, 3, 5]
    assert all(q.task == 19 for q in questions)
    first, second, third, fourth = questions
    # Questions are not part of the story; the story restarts at ID 1.
    assert first.context == [
        ("mary", "moved", "to", "the", "bathroom", "."),
        ("john", "went", "to", "the", "hallway", "."),
    ]
    assert second.context == first.context + [
        ("daniel", "went", "back", "to", "the", "hallway", ".")
    ]
    assert first.story is second.story and third.story is fourth.story
    assert first.story is not third.story
    assert third.context == [
        ("the", "kitchen", "is", "east", "of", "the", "garden", "."),
        ("the", "office", "is", "north", "of", "the", "kitchen", "."),
    ]
    assert len(fourth.context) == 3
    # Supporting IDs are line IDs, which count the question lines too.
    assert second.supporting_facts() == [("daniel", "went", "back", "to", "the", "hallway", ".")]
    assert fourth.supporting_facts() == [("sandra", "picked", "up", "the", "milk", ".")]
    assert third.supporting_facts() == third.context


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 Mary moved.\nMary went.\n", "line 2: expected 'ID text'"),
        ("1 Mary moved.\n3 John went.\n", "line 2: line ID 3 follows 1"),
        ("1 Mary moved.\n2 Where is Mary?\t\t1\n", "line 2: a question without an answer"),
        ("1 Mary moved.\n2 Where is Mary?\tx\t1\n3 Where?\tx\t2\n", "line 3: supporting IDs"),
        ("1 Mary moved.\n2 Where is Mary?\tx\t3\n", "line 2: supporting IDs"),
    ],
)
def test_malformed_lines_are_named(text, message):
    with pytest.raises(BabiFormatError, match=f"bad.txt, {message}"):
        parse(text, task=1, source="bad.txt")


def test_tokens_are_lower_case_with_punctuation_apart():
    assert tokenize("Where is Mary? ") == ("where", "is", "mary", "?")
    assert tokenize("Bill went.") == ("bill", "went", ".")


def raw_questions(text: str) -> list[tuple[list[str], str, str]]:
    """(story sentences so far, question, answer) by plain string handling."""
    out, story = [], []
    for line in text.splitlines():
        number, rest = line.split(" ", 1)
        if number == "1":
            story = []
        if "\t" in rest:
            question, answer = rest.split("\t")[:2]
            out.append((list(story), question.strip(), answer))
        else:
            story.append(rest)
    return out


@pytest.mark.parametrize("split", ["train", "test"])
def test_the_shipped_set_has_1000_questions_per_task_and_file(split):
    for task in TASK_NAMES:
        text = read_text(task, split)
        raw = raw_questions(text)
        assert len(raw) == 1000 == text.count("\t") // 2
        questions = load(task, split)
        assert len(questions) == 1000
        for q, (story, question, answer) in zip(questions[::97], raw[::97], strict=True):
            assert q.answer == answer
            assert " ".join(q.tokens) == re.sub(r"([.?])", r" \1", question).lower()
            assert [" ".join(s) for s in q.context] == [
                re.sub(r"([.?])", r" \1", s).lower() for s in story
            ]


def test_the_shipped_files_are_the_release_files_unchanged():
    names = sorted(p.name for p in (DATA / "en").iterdir())
    assert names == sorted(file_name(t, s) for t in TASK_NAMES for s in ("train", "test"))
    digest = hashlib.sha256()
    for name in names:
        digest.update((DATA / "en" / name).read_bytes())
    assert digest.hexdigest() == "8e790dd2c13bf05e71b00d17df28ad2ce798095f31cc162ef93f13585bd4d0f9"
    assert "Attribution 3.0" in (DATA / "LICENSE.txt").read_text()
    assert "Weston" in (DATA / "README.md").read_text()
    assert shipped_dir().joinpath(names[0]).read_bytes() == (DATA / "en" / names[0]).read_bytes()


def test_package_data_declares_every_shipped_file():
    project = tomllib.loads((TASKS_ROOT.parent / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["nma_tasks"]
    files = [p.relative_to(TASKS_ROOT).as_posix() for p in DATA.rglob("*") if p.is_file()]
    assert len(files) == 42
    for path in files:
        assert any(PurePosixPath(path).match(pattern) for pattern in patterns), path
