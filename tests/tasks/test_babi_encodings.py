"""bAbI's sentence encodings (position and temporal, Sukhbaatar et al. 2015, section 4.1)
against the raw text, re-derived here independently."""

from __future__ import annotations

import itertools

import pytest
import torch

from nma import UsageError
from nma.config import validate_options
from nma_tasks.babi import BabiTask
from tests.tasks.babi_helpers import raw_examples
from tests.tasks.sequence_helpers import run_task_cli

PICKS = [0, 1, 7, 120, 999]


def make(**options) -> BabiTask:
    return BabiTask(BabiTask.Config(**options))


def expected_position_blocks(words: list[str], index: dict[str, int], v: int) -> torch.Tensor:
    """Word j (from 1) of J adds 1 - j/J to its first-block channel and j/J to its second."""
    out = torch.zeros(2 * v, dtype=torch.float64)
    for j, word in enumerate(words, start=1):
        out[index.get(word, 0)] += 1 - j / len(words)
        out[v + index.get(word, 0)] += j / len(words)
    return out


def test_position_encoding_matches_the_raw_sentences():
    task = make(tasks=[2], sentence_encoding="position", max_sentences=10)
    v = len(task.words)
    assert (task.question_channel, task.answer_channel, task.input_size) == (
        2 * v,
        2 * v + 1,
        2 * v + 2,
    )
    raw = raw_examples(2, "train")
    batch = task.encode_questions([task.train_questions[i] for i in PICKS])
    for b, i in enumerate(PICKS):
        story, question, _ = raw[i]
        story = story[-10:]
        x = batch.inputs[:, b].double()
        for t, sentence in enumerate(story):
            assert torch.allclose(
                x[t, : 2 * v], expected_position_blocks(sentence, task.word_index, v)
            )
            assert x[t, 2 * v :].abs().sum() == 0  # no flag on a story step
        asked = x[len(story)]
        assert torch.allclose(
            asked[: 2 * v], expected_position_blocks(question, task.word_index, v)
        )
        assert asked[task.question_channel] == 1 and asked[task.answer_channel] == 0
        answer = x[len(story) + 1]
        assert answer[task.answer_channel] == 1 and answer.abs().sum() == 1
        assert batch.mask[len(story) + 1, b] == 1


def test_two_blocks_and_a_linear_layer_give_the_papers_position_encoding():
    """sum_j l_j o A x_j, l_kj = (1 - j/J) - (k/d)(1 - 2j/J) (eq. in section 4.1), equals
    (1 - k/d) o A a + (k/d) o A b on the two blocks a, b of the encoding."""
    task = make(tasks=[1], sentence_encoding="position")
    v, d = len(task.words), 7
    embedding = torch.randn(d, v, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sentence = ["mary", "went", "to", "the", "garden", "."]
    ids = [task.word_index[w] for w in sentence]
    big_j = len(ids)
    k = torch.arange(1, d + 1, dtype=torch.float64)
    paper = sum(
        ((1 - j / big_j) - (k / d) * (1 - 2 * j / big_j)) * embedding[:, w]
        for j, w in enumerate(ids, start=1)
    )
    blocks = task.encode_questions(task.train_questions[:1]).inputs  # any example: layout only
    assert blocks.shape[-1] == 2 * v + 2
    a_b = expected_position_blocks(sentence, task.word_index, v)
    ours = (1 - k / d) * (embedding @ a_b[:v]) + (k / d) * (embedding @ a_b[v:])
    assert torch.allclose(ours, paper, atol=1e-12)


@pytest.mark.parametrize("encoding", ["bag", "position"])
def test_temporal_channels_give_each_sentence_its_age(encoding):
    task = make(tasks=[3], temporal=True, sentence_encoding=encoding, max_sentences=30)
    raw = raw_examples(3, "train")
    batch = task.encode_questions([task.train_questions[i] for i in PICKS])
    assert task.input_size == task.time_channel + 30
    for b, i in enumerate(PICKS):
        count = min(len(raw[i][0]), 30)
        times = batch.inputs[:, b, task.time_channel :]
        for t in range(count):
            assert torch.nonzero(times[t]).flatten().tolist() == [count - 1 - t]
            assert times[t].sum() == 1
        assert times[count:].abs().sum() == 0  # the question, answer and padding steps


def test_time_noise_pushes_ages_back_reproducibly_and_only_in_training():
    noisy = make(tasks=[1], temporal=True, time_noise=0.5, max_sentences=50)
    plain = make(tasks=[1], temporal=True, max_sentences=50)

    def ages(batch, b):
        on = torch.nonzero(batch.inputs[:, b, noisy.time_channel :])
        return on[:, 1].tolist()  # one per story step, in order

    first = list(itertools.islice(noisy.batches("train", 8, torch.Generator().manual_seed(4)), 3))
    again = list(itertools.islice(noisy.batches("train", 8, torch.Generator().manual_seed(4)), 3))
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(first, again, strict=True))
    shifted = 0
    for batch in first:
        for b in range(8):
            got = ages(batch, b)
            clean = list(range(len(got) - 1, -1, -1))
            assert all(x > y for x, y in itertools.pairwise(got))  # still oldest first
            assert all(g >= c for g, c in zip(got, clean, strict=True))
            assert got[-1] in (0, 1)  # a gap after the last sentence at most
            shifted += got != clean
    assert shifted > 0
    held = next(noisy.batches("eval", 16, torch.Generator().manual_seed(0)))
    reference = next(plain.batches("eval", 16, torch.Generator().manual_seed(0)))
    assert torch.equal(held.inputs, reference.inputs)  # no noise on held-out questions


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"feed": "words", "sentence_encoding": "position"}, "feed = 'sentences'"),
        ({"feed": "words", "temporal": True}, "feed = 'sentences'"),
        ({"time_noise": 0.1}, "temporal = true"),
        ({"temporal": True, "time_noise": 1.0}, "time_noise"),
        ({"sentence_encoding": "sorted"}, "sentence_encoding"),
    ],
)
def test_inconsistent_encoding_options_are_refused(options, word):
    with pytest.raises(UsageError, match=word):
        validate_options(BabiTask.Config, {"tasks": [1], **options}, "task", "babi")


def test_the_memory_network_encodings_run_from_the_cli(tmp_path):
    options = {
        "tasks": "[1]",
        "eval_size": 3,
        "max_sentences": 4,
        "sentence_encoding": "'position'",
        "temporal": "true",
        "time_noise": 0.1,
    }
    summary = run_task_cli("babi", "kv", tmp_path / "run", options)
    assert summary["step"] == 2 and 0 <= summary["eval"]["error"] <= 1
    config = (tmp_path / "run" / "config.toml").read_text()
    assert 'sentence_encoding = "position"' in config and "temporal = true" in config


@pytest.mark.parametrize("feed", ["sentences", "words"])
def test_answer_at_the_question_step(feed):
    next_step = make(tasks=[2], feed=feed, max_sentences=10)
    same_step = make(tasks=[2], feed=feed, max_sentences=10, answer_at="question")
    questions = [next_step.train_questions[i] for i in PICKS]
    apart, together = next_step.encode_questions(questions), same_step.encode_questions(questions)
    assert together.inputs.shape[0] == apart.inputs.shape[0] - 1
    flag = same_step.answer_channel
    for b in range(len(PICKS)):
        last = int(apart.mask[:, b].argmax())  # the answer step of its own
        assert int(together.mask[:, b].argmax()) == last - 1 and together.mask[:, b].sum() == 1
        expected = apart.inputs[:last, b].clone()
        expected[last - 1, flag] = 1  # the question's (last) step also asks for the answer
        assert torch.equal(together.inputs[:last, b], expected)
        assert together.inputs[last:, b].abs().sum() == 0
        assert torch.equal(together.targets[last - 1, b], apart.targets[last, b])


@pytest.mark.parametrize("encoding", ["bag", "position"])
def test_output_channels_spell_each_one_word_answer_with_its_input_word(encoding):
    """An answer that a story or question uses as a word is spelled by that word's
    channel(s); several-word answers and answer-only words by none."""
    task = make(tasks=[1, 9, 19], sentence_encoding=encoding)
    v = len(task.words)
    channels = dict(zip(task.answers, task.output_channels, strict=True))
    assert len(task.output_channels) == task.output_size
    kitchen = task.word_index["kitchen"]
    assert channels["kitchen"] == ([kitchen, v + kitchen] if encoding == "position" else [kitchen])
    assert channels["yes"] == [] and channels["n,w"] == []  # "yes" is only ever an answer
    assert channels["no"] != []  # "no" is a story word ("no longer", task 9)
    for answer, spelled in channels.items():
        for c in spelled:
            assert task.words[c % v] == answer.lower()
    questions = task.encode_questions(task.train_questions[:50])
    assert max(c for s in task.output_channels for c in s) < questions.inputs.shape[-1]
