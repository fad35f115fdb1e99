"""The bAbI task against its definition and the raw files (Weston et al. 2015)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from nma import Batch, Ratio, UsageError
from nma.cli import main
from nma.config import validate_options
from nma.seeding import EVAL_SEED, generator
from nma.task import combine_metrics
from nma.trainer import evaluate
from nma_tasks.babi import BabiTask
from nma_tasks.babi_data import TASK_NAMES, file_name
from tests.tasks.babi_helpers import raw_examples, raw_file, raw_vocabulary
from tests.tasks.sequence_helpers import run_task_cli


def make(**options) -> BabiTask:
    return BabiTask(BabiTask.Config(**options))


@pytest.fixture(scope="module")
def joint() -> BabiTask:
    return make(tasks="all")


@pytest.fixture(scope="module")
def task1() -> BabiTask:
    return make(tasks=[1])


def decode(task: BabiTask, batch: Batch, b: int) -> tuple[list[list[str]], list[str], int]:
    """Column ``b`` read back: story (one word list per sentence; sorted for a bag of
    words), question words, and the answer step; checks the channel layout on the way."""
    v = len(task.words)
    x = batch.inputs[:, b]
    on = [torch.nonzero(step).flatten().tolist() for step in x]
    answer = next(t for t, channels in enumerate(on) if channels == [v + 1])
    assert all(channels == [] for channels in on[answer + 1 :])  # padding after the answer
    assert batch.mask[:, b].tolist() == [float(t == answer) for t in range(len(on))]
    marker = next(t for t, channels in enumerate(on) if v in channels)
    assert all(v not in c and v + 1 not in c for c in on[:marker] + on[marker + 1 : answer])
    if task.config.feed == "sentences":
        assert marker == answer - 1
        story = [[task.words[c] for c in channels] for channels in on[:marker]]
        question = [task.words[c] for c in on[marker] if c != v]
    else:
        assert on[marker] == [v]
        assert all(len(c) == 1 for c in on[:answer])  # one word per step
        flat = [task.words[c[0]] for c in on[:marker]]
        story = [list(g) + ["."] for k, g in itertools.groupby(flat, lambda w: w == ".") if not k]
        question = [task.words[c[0]] for c in on[marker + 1 : answer]]
    return story, question, answer


def label_of(task: BabiTask, batch: Batch, b: int) -> str | None:
    label = int(batch.targets[batch.mask[:, b].argmax(), b, 0])
    return task.answers[label] if label >= 0 else None


def test_vocabularies_are_those_of_the_training_files(joint, task1):
    expected = raw_vocabulary(list(TASK_NAMES))
    assert joint.words[0] == "<unk>" and set(joint.words[1:]) == expected
    assert len(joint.words) == len(expected) + 1 == 148
    assert joint.input_size == 150
    answers = {a for t in TASK_NAMES for _, _, a in raw_examples(t, "train")}
    assert joint.answers == sorted(answers) and joint.output_size == len(answers)
    assert set(task1.words[1:]) == raw_vocabulary([1]) and len(task1.answers) == 6


@pytest.mark.parametrize("feed", ["sentences", "words"])
def test_encodings_match_the_raw_text(feed):
    task = make(tasks=[3, 8], feed=feed, max_sentences=20)
    raw = raw_examples(3, "train") + raw_examples(8, "train")
    picks = [0, 1, 5, 200, 999, 1000, 1003, 1500, 1999]
    batch = task.encode_questions([task.train_questions[i] for i in picks])
    long_story = False
    for b, i in enumerate(picks):
        story, question, answer = raw[i]
        got_story, got_question, _ = decode(task, batch, b)
        kept = story[-20:]  # the 20 most recent sentences
        long_story |= len(story) > 20
        if feed == "sentences":
            assert [sorted(s) for s in got_story] == [sorted(set(s)) for s in kept]
            assert sorted(got_question) == sorted(set(question))
        else:
            assert got_story == kept and got_question == question
        assert label_of(task, batch, b) == answer
        assert int(batch.targets[batch.mask[:, b].argmax(), b, 1]) == (3 if i < 1000 else 8)
    assert long_story


def test_first_question_of_task_1_step_by_step(task1):
    batch = task1.encode_questions(task1.train_questions[:1])
    w = task1.word_index
    v = len(task1.words)
    rows = [set(torch.nonzero(step[0]).flatten().tolist()) for step in batch.inputs]
    assert rows == [
        {w["mary"], w["moved"], w["to"], w["the"], w["bathroom"], w["."]},
        {w["john"], w["went"], w["to"], w["the"], w["hallway"], w["."]},
        {w["where"], w["is"], w["mary"], w["?"], v},
        {v + 1},
    ]
    assert batch.targets.shape == (4, 1, 2)
    assert batch.targets[3, 0].tolist() == [task1.answers.index("bathroom"), 1]
    assert batch.targets[:3].abs().sum() == 0


def test_training_batches_are_training_questions_drawn_reproducibly():
    task = make(tasks=[1, 2], eval_split="valid", max_sentences=50)
    raw = raw_examples(1, "train") + raw_examples(2, "train")
    known = {(tuple(map(frozenset, s[-50:])), frozenset(q), a) for s, q, a in raw}
    held = {id(q) for q in task.eval_questions}
    train_keys = {
        (tuple(frozenset(s) for s in q.context[-50:]), frozenset(q.tokens), q.answer)
        for q in task.train_questions
    }
    assert train_keys <= known
    stream = task.batches("train", 16, torch.Generator().manual_seed(3))
    again = task.batches("train", 16, torch.Generator().manual_seed(3))
    tasks_seen = set()
    for batch, other in itertools.islice(zip(stream, again, strict=True), 6):
        assert torch.equal(batch.inputs, other.inputs) and torch.equal(batch.targets, other.targets)
        for b in range(16):
            story, question, _ = decode(task, batch, b)
            key = (tuple(map(frozenset, story)), frozenset(question), label_of(task, batch, b))
            assert key in train_keys and key in known
            tasks_seen.add(int(batch.targets[batch.mask[:, b].argmax(), b, 1]))
        assert batch.inputs.shape[0] == int(batch.mask.argmax(0).max()) + 1  # padded to longest
    assert tasks_seen == {1, 2}
    assert not held & {id(q) for q in task.train_questions}


def test_validation_split_is_a_fixed_tenth_of_training():
    a = make(tasks=[1, 4], eval_split="valid")
    b = make(tasks=[4], eval_split="valid")
    assert len(a.eval_questions) == 200 and len(a.train_questions) == 1800
    ids = lambda qs: [(q.task, q.line_id, id(q.story)) for q in qs]  # noqa: E731
    assert ids(a.eval_questions[100:]) == ids(b.eval_questions)  # independent of the others
    assert not set(ids(a.eval_questions)) & set(ids(a.train_questions))
    first = list(a.batches("eval", 64, torch.Generator().manual_seed(0)))
    second = list(a.batches("eval", 64, torch.Generator().manual_seed(9)))
    assert [x.inputs.shape[1] for x in first] == [64, 64, 64, 8]
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(first, second, strict=True))


def test_eval_split_is_the_test_files_in_order(task1):
    raw = raw_examples(1, "test")
    batches = list(task1.batches("eval", 300, torch.Generator().manual_seed(0)))
    assert [b.inputs.shape[1] for b in batches] == [300, 300, 300, 100]
    index = 0
    for batch in batches:
        for b in range(batch.inputs.shape[1]):
            story, question, answer = raw[index]
            if index % 50 == 0:
                got_story, got_question, _ = decode(task1, batch, b)
                assert [sorted(s) for s in got_story] == [sorted(set(s)) for s in story]
            label, number = batch.targets[batch.mask[:, b].argmax(), b].tolist()
            assert number == 1 and task1.answers[int(label)] == answer
            index += 1
    assert index == 1000


def test_eval_size_draws_a_fixed_subset_per_task():
    task = make(tasks=[1, 2], eval_size=30)
    first = list(task.batches("eval", 64, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 64, torch.Generator().manual_seed(5)))
    assert sum(b.inputs.shape[1] for b in first) == 60 == task.eval_total
    assert all(torch.equal(x.targets, y.targets) for x, y in zip(first, again, strict=True))
    tasks = torch.cat(
        [b.targets[b.mask.argmax(0), torch.arange(b.mask.shape[1]), 1] for b in first]
    )
    assert tasks.tolist() == [1.0] * 30 + [2.0] * 30


def test_curriculum_grows_the_longest_story():
    task = make(tasks=[2], curriculum_steps=10, curriculum_min_sentences=3, max_sentences=50)
    stream = task.batches("train", 32, torch.Generator().manual_seed(0))
    for i, batch in enumerate(itertools.islice(stream, 12)):
        stories = [len(decode(task, batch, b)[0]) for b in range(32)]
        cap = 3 + 47 * i // 10 if i < 10 else 50
        assert max(stories) <= cap
        if i >= 10:
            assert max(stories) > 20
    lengths = [min(len(q.context), 50) for q in task.train_questions]
    assert min(lengths) <= 3


class Replay(nn.Module):
    """A stand-in model that returns prepared outputs, one batch per call."""

    def __init__(self, outputs: list[Tensor]) -> None:
        super().__init__()
        self.outputs = iter(outputs)

    def forward(self, inputs: Tensor) -> tuple[Tensor, None]:
        return next(self.outputs), None


def planned_outputs(task: BabiTask, batches: list[Batch], wrong: dict[int, int]) -> list[Tensor]:
    """Logits right on every question except the first ``wrong[n]`` of task ``n``."""
    outputs, seen = [], dict.fromkeys(wrong, 0)
    for batch in batches:
        logits = torch.zeros(*batch.mask.shape, task.output_size)
        for b in range(batch.mask.shape[1]):
            t = int(batch.mask[:, b].argmax())
            label, n = int(batch.targets[t, b, 0]), int(batch.targets[t, b, 1])
            answer = label if label >= 0 else 0
            if seen[n] < wrong[n]:
                answer = (max(label, 0) + 1) % task.output_size
            seen[n] += 1
            logits[t, b, answer] = 5.0
            logits[t - 1, b, (answer + 1) % task.output_size] = 9.0  # unscored step
        outputs.append(logits)
    return outputs


def test_held_out_metrics_are_exact_under_the_trainers_averaging():
    task = make(tasks=[1, 2, 3])
    wrong = {1: 50, 2: 51, 3: 0}  # 5.0% (not failed), 5.1% (failed), 0%
    batches = list(task.batches("eval", 37, generator(EVAL_SEED, "eval-data")))
    assert len(batches) == 82 and 3000 % 37 != 0  # tasks straddle batches
    model = Replay(planned_outputs(task, batches, wrong))
    metrics = evaluate(model, task, 37, torch.device("cpu"))
    assert metrics["error_task_1"] == pytest.approx(0.050, abs=1e-12)
    assert metrics["error_task_2"] == pytest.approx(0.051, abs=1e-12)
    assert metrics["error_task_3"] == 0.0
    assert metrics["error"] == pytest.approx(0.101 / 3, abs=1e-12)
    assert metrics["accuracy"] == pytest.approx(1 - 101 / 3000, abs=1e-12)
    assert metrics["failed_tasks"] == 1.0
    # Nothing carries over from one pass to the next.
    model = Replay(planned_outputs(task, batches, {1: 0, 2: 0, 3: 60}))
    again = evaluate(model, task, 37, torch.device("cpu"))
    assert again["failed_tasks"] == 1.0 and again["error_task_3"] == pytest.approx(0.06)
    assert again["error"] == pytest.approx(0.02)


def test_batch_metrics_are_ratios_per_task_and_stateless():
    task = make(tasks=[1, 2, 3])
    batches = list(task.batches("eval", 64, generator(EVAL_SEED, "eval-data")))
    last = batches[-1]  # the last 56 questions of task 3
    (all_wrong,) = planned_outputs(task, [last], {1: 0, 2: 0, 3: 64})
    assert task.metrics(all_wrong, last) == {
        "accuracy": 0.0,
        "error_task_1": Ratio(0.0, 0.0),
        "error_task_2": Ratio(0.0, 0.0),
        "error_task_3": Ratio(56.0, 56.0),
    }
    # Scoring a batch on its own leaves no trace in a later evaluation.
    model = Replay(planned_outputs(task, batches, {1: 0, 2: 60, 3: 0}))
    metrics = evaluate(model, task, 64, torch.device("cpu"))
    assert metrics["failed_tasks"] == 1.0 and metrics["error_task_3"] == 0.0
    assert metrics["error_task_2"] == pytest.approx(0.06)


def test_an_unseen_answer_is_always_an_error():
    task = make(tasks=[8], eval_size=0)
    batches = list(task.batches("eval", 500, torch.Generator()))
    unknown = sum(int((b.targets[..., 0] < 0).sum()) for b in batches)
    assert unknown == 1  # "football,apple,milk" appears only in the test file
    model = Replay(planned_outputs(task, batches, {8: 0}))
    metrics = evaluate(model, task, 500, torch.device("cpu"))
    assert metrics["error_task_8"] == pytest.approx(0.001) and metrics["failed_tasks"] == 0


def test_training_batch_metrics_count_the_tasks_present(joint):
    questions = [q for q in joint.train_questions if q.task in (5, 7)][::100]  # 10 of each
    batch = joint.encode_questions(questions)
    wrong = {5: 1, 7: 0}
    (logits,) = planned_outputs(joint, [batch], wrong)
    raw = joint.metrics(logits, batch)
    assert raw["error_task_5"] == Ratio(1.0, 10.0) and raw["error_task_7"] == Ratio(0.0, 10.0)
    assert raw["error_task_1"] == Ratio(0.0, 0.0) and "error" not in raw
    # As the trainer logs a training batch: absent tasks drop out of the mean.
    metrics = joint.summarize_metrics(combine_metrics([(raw, 20)]))
    assert metrics == {
        "accuracy": pytest.approx(0.95),
        "error": pytest.approx(0.05),
        "failed_tasks": 1.0,
        "error_task_5": pytest.approx(0.1),
        "error_task_7": 0.0,
    }


def test_summarize_metrics_takes_the_mean_over_the_selected_tasks():
    task = make(tasks=[2, 4, 6])
    metrics = {"loss": 1.5, "accuracy": 0.9, "error_task_2": 0.2, "error_task_4": 0.05}
    summary = task.summarize_metrics(metrics)
    assert summary["error"] == pytest.approx(0.125) and summary["failed_tasks"] == 1.0
    assert summary["loss"] == 1.5 and "error_task_6" not in summary
    full = task.summarize_metrics({**metrics, "error_task_6": 0.051})
    assert full["error"] == pytest.approx(0.301 / 3) and full["failed_tasks"] == 2.0
    assert task.summarize_metrics({"loss": 2.0}) == {"loss": 2.0}


def test_loss_is_cross_entropy_at_the_answer_step_over_known_answers(task1):
    batch = task1.encode_questions(task1.train_questions[10:14])
    batch.targets[batch.mask.argmax(0)[3], 3, 0] = -1  # an unknown answer: left out
    logits = torch.randn(*batch.mask.shape, task1.output_size, dtype=torch.float64)
    terms = []
    for b in range(3):
        t = int(batch.mask[:, b].argmax())
        row = logits[t, b]
        label = int(batch.targets[t, b, 0])
        terms.append(math.log(sum(math.exp(x) for x in row.tolist())) - float(row[label]))
    assert float(task1.loss(logits, batch)) == pytest.approx(sum(terms) / 3, rel=1e-9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tasks": [21]}, r"unknown bAbI task \[21\].*1 to 20"),
        ({"tasks": [0, 3]}, r"unknown bAbI task \[0\]"),
        ({"tasks": []}, "no bAbI task selected"),
        ({"tasks": [1, 1]}, "names a task twice"),
        ({"tasks": "some"}, "tasks"),
        ({"max_sentences": 5, "curriculum_min_sentences": 6}, "exceeds max_sentences"),
        ({"feed": "letters"}, "feed"),
        ({"eval_split": "dev"}, "eval_split"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(BabiTask.Config, options, "task", "babi")


def write_tasks(root: Path, tasks: list[int], splits: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        for split in splits:
            (root / file_name(task, split)).write_text(
                raw_file(task, split)[:2000].rsplit("\n1 ", 1)[0] + "\n"
            )


def test_a_data_dir_missing_a_file_is_named(tmp_path):
    write_tasks(tmp_path, [1, 2, 4], ["train", "test"])
    (tmp_path / file_name(3, "test")).write_text("")
    with pytest.raises(UsageError, match="qa3_three-supporting-facts_train.txt"):
        validate_options(
            BabiTask.Config, {"tasks": [1, 3], "data_dir": str(tmp_path)}, "task", "babi"
        )
    with pytest.raises(UsageError, match="lacks the bAbI file.s. qa2_two-supporting-facts_test"):
        (tmp_path / file_name(2, "test")).unlink()
        validate_options(BabiTask.Config, {"tasks": [2], "data_dir": str(tmp_path)}, "task", "babi")
    # Without the test file, the validation split still works.
    ok = validate_options(
        BabiTask.Config,
        {"tasks": [2], "data_dir": str(tmp_path), "eval_split": "valid"},
        "task",
        "babi",
    )
    task = BabiTask(ok)
    assert 0 < len(task.train_questions) < 20 and task.input_size > 2


def test_a_data_dir_is_read_instead_of_the_shipped_set(tmp_path):
    write_tasks(tmp_path, [1], ["train", "test"])
    task = make(tasks=[1], data_dir=str(tmp_path))
    raw = [line for line in (tmp_path / file_name(1, "train")).read_text().splitlines()]
    assert len(task.train_questions) == sum("\t" in line for line in raw)
    assert len(task.train_questions) < 1000


def cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch) -> tuple[int, str]:
    """Run ``nma run --task babi ARGS`` through the real entry point, in process."""
    monkeypatch.setattr("sys.argv", ["nma", "run", "--task", "babi", "--no-progress", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, " ".join((captured.out + captured.err).split())


def test_cli_reports_bad_tasks_and_missing_files_with_exit_code_2(tmp_path, capsys, monkeypatch):
    code, output = cli(
        ["--set", "task.tasks=[25]", "--out", str(tmp_path / "a")], capsys, monkeypatch
    )
    assert code == 2 and "unknown bAbI task [25]" in output and "Traceback" not in output
    args = [
        "--set",
        f"task.data_dir={tmp_path}",
        "--set",
        "task.tasks=[3]",
        "--out",
        str(tmp_path / "b"),
    ]
    code, output = cli(args, capsys, monkeypatch)
    assert code == 2 and "qa3_three-supporting-facts_train.txt" in output
    assert "Traceback" not in output and not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("memory", "feed"), [("ntm", "sentences"), ("dnc", "words"), ("kv", "sentences")]
)
def test_runs_from_the_cli(memory, feed, tmp_path):
    options = {"tasks": "[1]", "feed": feed, "eval_size": 3, "max_sentences": 4}
    summary = run_task_cli("babi", memory, tmp_path / "run", options)
    assert summary["step"] == 2
    assert set(summary["eval"]) >= {"loss", "accuracy", "error", "error_task_1", "failed_tasks"}
    assert 0 <= summary["eval"]["error"] <= 1
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "tasks = [" in config
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["eval"]["failed_tasks"] in (
        0,
        1,
    )


def test_a_single_task_number_is_a_list_of_one():
    assert validate_options(BabiTask.Config, {"tasks": 7}, "task", "babi").task_numbers == [7]
    assert validate_options(BabiTask.Config, {}, "task", "babi").task_numbers == list(range(1, 21))
