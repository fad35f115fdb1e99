"""The bAbI question-answering tasks (Weston et al. 2015), on the real data: the 1k
English set shipped with ``nma-tasks``, or the 10k set from a directory of your own."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor

from nma import Batch, Options, Ratio, Split, Task
from nma_tasks.babi_data import TASK_NAMES, Question, load, missing_files
from nma_tasks.sequences import eval_batch_sizes, ramp

UNKNOWN = "<unk>"
"""The word that stands for every word not in the training files (index 0)."""

VALID_SEED = 1502_05698
"""Seed of the validation split (plus the task number): fixed, whatever the run's seed."""

FAIL_THRESHOLD = 0.05
"""A task fails at an error above 5% (Weston et al. 2015)."""

# Channels of a target step (the answer step): the answer's index (-1 if it is not in
# the answer vocabulary) and the task number.
LABEL, TASK = range(2)


class Encoded(NamedTuple):
    """A question as word indices: the story's sentences ``sentences[start:end]``, the
    question, the answer's index and the task number."""

    sentences: list[list[int]]
    start: int
    end: int
    question: list[int]
    label: int
    task: int


class BabiTask(Task):
    """Answer a question about a short story: the 20 bAbI tasks (Weston et al. 2015).

    Each question of the data, with the story before it (at most the
    ``max_sentences`` most recent sentences; question lines are not part of the
    story), is one example; its answer is one label.

    Vocabulary: every token of the selected tasks' training files (story sentences
    and questions; lower-cased words, with ``.`` and ``?`` as tokens of their own),
    sorted, after ``<unk>`` (index 0), which stands for words seen only in held-out
    data. ``V`` is its size. Answer vocabulary: the distinct answers of the training
    files, sorted; a multi-word answer (tasks 8 and 19: ``"apple,milk"``, ``"n,w"``)
    is one label. A held-out answer absent from the training files (one test question
    of task 8, ``"football,apple,milk"``) can never be answered: it counts as an error
    and is left out of the loss.

    Inputs ``(T, B, V + 2)`` by default (more with the sentence encodings below):
    channels ``0..V-1`` are words, channel ``V`` marks the question and channel
    ``V + 1`` asks for the answer. With ``feed = "sentences"``:
    one step per story sentence (a multi-hot bag of its words), then one step with the
    question's words and channel ``V``, then the answer step (channel ``V + 1``). With
    ``feed = "words"``: one step per story word (one-hot), then one step with channel
    ``V`` alone, one step per question word (one-hot), then the answer step (channel
    ``V + 1``). Examples are padded with zero steps after their answer step to the
    longest of the batch. With ``answer_at = "question"`` there is no answer step of
    its own: channel ``V + 1`` is set at the question's step (with ``feed = "words"``,
    at its last word's step), where the answer is then asked for.

    Sentence encodings (``feed = "sentences"``), after End-To-End Memory Networks
    (Sukhbaatar et al. 2015, section 4.1). ``sentence_encoding = "position"``: the word
    block is doubled, ``2V`` channels; word ``j`` (from 1) of a ``J``-word sentence (or
    question) adds ``1 - j/J`` to its channel in the first block and ``j/J`` in the
    second, so the flags move to ``2V`` (question) and ``2V + 1`` (answer). The paper's
    position encoding ``m = sum_j l_j o A x_j`` with ``l_kj = (1 - j/J) - (k/d)(1 -
    2j/J)`` equals ``(1 - k/d) o A a + (k/d) o A b`` for the two blocks ``a`` and ``b``
    (since ``l_kj = (1 - j/J)(1 - k/d) + (j/J)(k/d)``), so a linear layer on these inputs
    can learn it exactly (and more). ``temporal = true``: ``max_sentences`` more
    channels after the flags; a story sentence of age ``a`` (0 the most recent, counted
    in fed sentences) sets channel ``a`` of them, which a linear layer turns into the
    paper's learned temporal encoding ``T_A(a)``. ``time_noise = p`` (training batches
    only): after each story sentence, with probability ``p``, a gap in the ages, as if an
    empty memory were there (the paper's "random noise", ``p = 0.1``); ages are capped at
    ``max_sentences - 1``.

    Output channels (:attr:`nma.Task.output_channels`, for a head tied to the input
    embedding, MemN2N's ``W^T = C^K``): an answer that is one input word is spelled by
    that word's channel (both blocks with the position encoding); the others (several
    words, or words no story or question uses, such as ``yes``) by none.

    Targets ``(T, B, 2)``, non-zero at the answer step only: the answer's index (-1
    if it is not in the answer vocabulary) and the task number. Mask ``(T, B)``: 1 at
    the answer step only.

    Loss: cross-entropy of the logits over the answer vocabulary at the answer step,
    over the questions with a known answer. Metrics (:meth:`metrics` per batch, then
    :meth:`summarize_metrics` on the combined figures): ``accuracy``, the share of
    questions answered right; ``error_task_<n>``, the share of task ``n``'s questions
    answered wrongly, an :class:`nma.Ratio` (wrong answers, questions of task ``n``),
    so the trainer sums both over the held-out batches before dividing; ``error``
    (main), the mean of the per-task errors over the selected tasks, the papers' "mean
    error"; ``failed_tasks``, how many of them have an error above 5%. ``error`` and
    ``failed_tasks`` are derived from the per-task errors once all held-out batches
    are scored. A training log is one batch: a task absent from it has no error there,
    and ``error`` and ``failed_tasks`` are over the tasks present in that batch.

    Held-out split: the test files (``eval_split = "test"``), or a tenth of each
    task's training questions, chosen with a fixed seed and taken out of training
    (``"valid"``); ``eval_size > 0`` keeps that many questions per task, drawn with
    the trainer's evaluation generator. Training batches are questions drawn uniformly
    at random (with replacement) from the training questions.

    Curriculum: with ``curriculum_steps = N > 0``, training batch ``i`` (from 0) draws
    only questions whose story (as fed, at most ``max_sentences`` sentences) has at
    most ``m + ⌊(max_sentences - m)·i/N⌋`` sentences, ``m`` being
    ``curriculum_min_sentences`` (raised to the shortest story there is); from batch
    ``N`` on, all questions.
    """

    main_metric = "error"
    main_metric_mode = "min"

    class Config(Options):
        tasks: list[int] | Literal["all"] = Field(
            "all",
            description='Task numbers (1-20), e.g. [1, 2]; "all" (joint training on the 20).',
        )
        data_dir: str = Field(
            "",
            description="A directory of bAbI v1.2 files under their original names "
            "(e.g. the 10k set, en-10k); empty: the 1k English set shipped with nma-tasks.",
        )
        feed: Literal["sentences", "words"] = Field(
            "sentences",
            description="One bag-of-words step per sentence, or one one-hot step per word.",
        )
        max_sentences: int = Field(
            50, ge=1, description="Most recent story sentences fed before a question."
        )
        sentence_encoding: Literal["bag", "position"] = Field(
            "bag",
            description="With feed=sentences: a bag of words (multi-hot), or two "
            "position-weighted bags, from which a linear layer gets the position encoding "
            "of End-To-End Memory Networks (Sukhbaatar et al. 2015, section 4.1).",
        )
        temporal: bool = Field(
            False,
            description="With feed=sentences: add max_sentences channels, one-hot of each "
            "story sentence's age (0 for the most recent): the temporal encoding of "
            "End-To-End Memory Networks (section 4.1) for a linear layer to learn.",
        )
        time_noise: float = Field(
            0.0,
            ge=0.0,
            lt=1.0,
            description="With temporal: on training batches, after each story sentence a "
            "gap in the ages (an empty memory) with this probability ('random noise', "
            "section 4.1; 0.1 there).",
        )
        eval_split: Literal["test", "valid"] = Field(
            "test",
            description="Held-out questions: the test files, or a tenth of the training "
            "questions (fixed seed) taken out of training.",
        )
        eval_size: int = Field(
            0, ge=0, description="Held-out questions per task (0: all), drawn at random."
        )
        answer_at: Literal["next", "question"] = Field(
            "next",
            description="The answer is asked for at a step of its own after the question "
            "(next), or at the question step itself (question: one step fewer; End-To-End "
            "Memory Networks answer from the question's read).",
        )
        curriculum_steps: int = Field(
            0,
            ge=0,
            description="Training batches over which the longest story grows linearly "
            "from curriculum_min_sentences to max_sentences (0: no curriculum).",
        )
        curriculum_min_sentences: int = Field(
            1, ge=1, description="Longest story (in sentences) of the first curriculum batch."
        )

        @field_validator("tasks", mode="before")
        @classmethod
        def _one_task(cls, value: object) -> object:
            return [value] if isinstance(value, int) and not isinstance(value, bool) else value

        @model_validator(mode="after")
        def _check(self) -> BabiTask.Config:
            numbers = self.task_numbers
            unknown = sorted({n for n in numbers if n not in TASK_NAMES})
            if not numbers or unknown:
                what = f"unknown bAbI task {unknown}" if unknown else "no bAbI task selected"
                raise ValueError(
                    f'{what}: tasks is "all" or a list of task numbers from 1 to 20 '
                    f"(1 {TASK_NAMES[1]}, ..., 20 {TASK_NAMES[20]})"
                )
            if len(set(numbers)) != len(numbers):
                raise ValueError(f"tasks {numbers} names a task twice")
            if self.feed == "words" and (
                self.sentence_encoding != "bag" or self.temporal or self.time_noise
            ):
                raise ValueError(
                    "sentence_encoding, temporal and time_noise describe sentence steps: "
                    "they need feed = 'sentences' (a word step has no position or age)"
                )
            if self.time_noise and not self.temporal:
                raise ValueError("time_noise shifts sentence ages: it needs temporal = true")
            if self.curriculum_min_sentences > self.max_sentences:
                raise ValueError(
                    f"curriculum_min_sentences ({self.curriculum_min_sentences}) exceeds "
                    f"max_sentences ({self.max_sentences})"
                )
            splits = ["train"] + (["test"] if self.eval_split == "test" else [])
            missing = missing_files(numbers, splits, self.data_dir)
            if missing:
                raise ValueError(
                    f"data_dir {self.data_dir!r} lacks the bAbI file(s) {', '.join(missing)}: "
                    f"give a directory holding the selected tasks' files under their "
                    f"original names (qa<N>_<name>_<train|test>.txt), select other tasks, or "
                    f"leave data_dir empty for the 1k set shipped with nma-tasks"
                )
            return self

        @property
        def task_numbers(self) -> list[int]:
            """The selected task numbers, in order."""
            return list(TASK_NAMES) if self.tasks == "all" else list(self.tasks)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        numbers = config.task_numbers
        files = {n: load(n, "train", config.data_dir) for n in numbers}
        if config.eval_split == "test":
            train = [q for n in numbers for q in files[n]]
            held = [q for n in numbers for q in load(n, "test", config.data_dir)]
        else:
            train, held = [], []
            for n in numbers:
                keep, out = validation_split(len(files[n]), n)
                train += [files[n][i] for i in keep]
                held += [files[n][i] for i in out]
        self.words = build_vocabulary([q for n in numbers for q in files[n]])
        self.answers = sorted({q.answer for n in numbers for q in files[n]})
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.answer_index = {a: i for i, a in enumerate(self.answers)}
        self.train_questions: list[Question] = train
        self.eval_questions: list[Question] = held
        v = len(self.words)
        blocks = 2 if config.sentence_encoding == "position" else 1
        self.question_channel = blocks * v
        """Marks the question step."""
        self.answer_channel = blocks * v + 1
        """Marks the answer step."""
        self.time_channel = blocks * v + 2
        """With ``temporal``: channel ``time_channel + a`` marks a sentence of age ``a``."""
        self.input_size = self.time_channel + (config.max_sentences if config.temporal else 0)
        self.output_size = len(self.answers)
        self.output_channels = [self._spelling(a) for a in self.answers]
        self._story_ids: dict[int, list[list[int]]] = {}
        self._train = [self._encode(q) for q in train]
        self._held = [self._encode(q) for q in held]
        self._held_by_task = {n: [i for i, q in enumerate(held) if q.task == n] for n in numbers}
        self._eval_counts = {
            n: min(len(idx), config.eval_size or len(idx)) for n, idx in self._held_by_task.items()
        }
        self.eval_total = sum(self._eval_counts.values())
        lengths = torch.tensor([e.end - e.start for e in self._train])
        self._by_length = torch.argsort(lengths, stable=True)
        self._sorted_lengths = lengths[self._by_length]

    # --- encoding ---------------------------------------------------------------

    def _spelling(self, answer: str) -> list[int]:
        """The input channels of an answer that is one story or question word: its
        word channel, both blocks' with the position encoding (whose two blocks sum to
        the paper's word embedding, ``(1 - k/d) + k/d = 1``). An answer of several
        words, or a word that only answers use (``yes``, ``none``), spells nothing."""
        index = self.word_index.get(answer.lower())
        if index is None:
            return []
        if self.config.sentence_encoding == "position" and self.config.feed == "sentences":
            return [index, len(self.words) + index]
        return [index]

    def _encode(self, question: Question) -> Encoded:
        story = question.story
        ids = self._story_ids.get(id(story))
        if ids is None:
            ids = [[self.word_index.get(w, 0) for w in s] for s in story.sentences]
            self._story_ids[id(story)] = ids
        start = max(0, question.end - self.config.max_sentences)
        return Encoded(
            ids,
            start,
            question.end,
            [self.word_index.get(w, 0) for w in question.tokens],
            self.answer_index.get(question.answer, -1),
            question.task,
        )

    def _words(self, sentence: list[int]) -> list[tuple[int, float]]:
        """The word channels of one sentence step, with their values."""
        if self.config.sentence_encoding == "bag":
            return [(w, 1.0) for w in sentence]
        v, count = len(self.words), len(sentence)
        # word j (from 1) of J: 1 - j/J in the first block, j/J in the second
        return [
            pair
            for j, w in enumerate(sentence, start=1)
            for pair in ((w, 1.0 - j / count), (v + w, j / count))
        ]

    def _ages(self, count: int, generator: torch.Generator | None) -> list[int]:
        """The ages of ``count`` story sentences, oldest first (0 = the most recent),
        pushed back by random gaps with ``time_noise`` when ``generator`` is given."""
        ages = list(range(count - 1, -1, -1))
        if generator is not None and self.config.time_noise > 0 and count:
            gaps = torch.rand(count, generator=generator) < self.config.time_noise
            behind = torch.flip(torch.cumsum(torch.flip(gaps, [0]), 0), [0])  # gaps at or after i
            ages = [a + int(g) for a, g in zip(ages, behind.tolist(), strict=True)]
        return [min(a, self.config.max_sentences - 1) for a in ages]

    def _steps(
        self, example: Encoded, generator: torch.Generator | None = None
    ) -> list[list[tuple[int, float]]]:
        """The input channels set at each step of one example, with their values."""
        story = example.sentences[example.start : example.end]
        question, answer = self.question_channel, self.answer_channel
        if self.config.feed == "words":
            words = [[(w, 1.0)] for s in story for w in s]
            asked = [[(w, 1.0)] for w in example.question]
            if self.config.answer_at == "question":
                return [*words, [(question, 1.0)], *asked[:-1], [*asked[-1], (answer, 1.0)]]
            return [*words, [(question, 1.0)], *asked, [(answer, 1.0)]]
        steps = [self._words(s) for s in story]
        if self.config.temporal:
            ages = self._ages(len(story), generator)
            steps = [[*s, (self.time_channel + a, 1.0)] for s, a in zip(steps, ages, strict=True)]
        asked = [*self._words(example.question), (question, 1.0)]
        if self.config.answer_at == "question":
            return [*steps, [*asked, (answer, 1.0)]]
        return [*steps, asked, [(answer, 1.0)]]

    def encode(
        self, examples: Sequence[Encoded], generator: torch.Generator | None = None
    ) -> Batch:
        """A batch of encoded examples; ``generator`` draws the ``time_noise`` gaps
        (training batches only)."""
        size = len(examples)
        steps = [self._steps(e, generator) for e in examples]
        length = max(len(s) for s in steps)
        inputs = torch.zeros(length, size, self.input_size)
        t_idx, b_idx, c_idx, values = [], [], [], []
        for b, example_steps in enumerate(steps):
            for t, channels in enumerate(example_steps):
                t_idx += [t] * len(channels)
                b_idx += [b] * len(channels)
                c_idx += [c for c, _ in channels]
                values += [x for _, x in channels]
        if self.config.sentence_encoding == "bag":  # a word twice in a sentence is still 1
            inputs[t_idx, b_idx, c_idx] = 1.0
        else:
            index = (torch.tensor(t_idx), torch.tensor(b_idx), torch.tensor(c_idx))
            inputs.index_put_(index, torch.tensor(values), accumulate=True)
        answer_step = torch.tensor([len(s) - 1 for s in steps])
        columns = torch.arange(size)
        mask = torch.zeros(length, size)
        mask[answer_step, columns] = 1.0
        info = torch.tensor([[e.label, e.task] for e in examples], dtype=torch.float32)
        targets = torch.zeros(length, size, 2)
        targets[answer_step, columns] = info
        return Batch(inputs, targets, mask)

    def encode_questions(self, questions: Sequence[Question]) -> Batch:
        """A training-style batch of the given questions."""
        return self.encode([self._encode(q) for q in questions])

    # --- batches ----------------------------------------------------------------

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless random training batches, or the held-out questions in order."""
        c = self.config
        if split == "train":
            shortest = int(self._sorted_lengths[0])
            low = min(max(c.curriculum_min_sentences, shortest), c.max_sentences)
            for index in itertools.count():
                cap = ramp(index, c.curriculum_steps, low, c.max_sentences)
                pool = int(torch.searchsorted(self._sorted_lengths, cap, right=True))
                picks = torch.randint(0, pool, (batch_size,), generator=generator)
                examples = [self._train[i] for i in self._by_length[picks].tolist()]
                yield self.encode(examples, generator if c.time_noise > 0 else None)
        elif split == "eval":
            chosen: list[int] = []
            for n, indices in self._held_by_task.items():
                if self._eval_counts[n] < len(indices):
                    subset = torch.randperm(len(indices), generator=generator)
                    indices = [indices[i] for i in sorted(subset[: self._eval_counts[n]].tolist())]
                chosen += indices
            start = 0
            for size in eval_batch_sizes(len(chosen), batch_size):
                part = range(start, start + size)
                yield self.encode([self._held[chosen[i]] for i in part])
                start += size
        else:
            raise ValueError(f"unknown split {split!r}")

    # --- loss and metrics -------------------------------------------------------

    @staticmethod
    def answer_step(outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """The logits ``(B, answers)`` and target channels ``(B, 2)`` of each example's
        answer step (the step its mask marks)."""
        step = batch.mask.argmax(dim=0)
        columns = torch.arange(step.shape[0], device=step.device)
        return outputs[step, columns], batch.targets[step, columns]

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Cross-entropy at the answer step, over examples with a known answer."""
        logits, info = self.answer_step(outputs, batch)
        labels = info[:, LABEL].long()
        known = (labels >= 0).float()
        terms = F.cross_entropy(logits, labels.clamp_min(0), reduction="none")
        return (terms * known).sum() / known.sum().clamp_min(1.0)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float | Ratio]:
        """``accuracy`` and, for each selected task ``n``, ``error_task_<n>`` as a
        :class:`nma.Ratio` (wrong answers, questions of task ``n`` in the batch; a task
        absent from the batch gives a count of 0)."""
        logits, info = self.answer_step(outputs, batch)
        labels, tasks = info[:, LABEL].long(), info[:, TASK].long()
        wrong = (logits.argmax(dim=-1) != labels).double()
        wrong_by_task = torch.bincount(tasks, weights=wrong, minlength=len(TASK_NAMES) + 1)
        count_by_task = torch.bincount(tasks, minlength=len(TASK_NAMES) + 1)
        accuracy = 1.0 - float(wrong.mean())
        wrong_by_task, count_by_task = wrong_by_task.tolist(), count_by_task.tolist()
        out: dict[str, float | Ratio] = {"accuracy": accuracy}
        for n in self.config.task_numbers:
            out[f"error_task_{n}"] = Ratio(wrong_by_task[n], float(count_by_task[n]))
        return out

    def summarize_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """``error``, the mean of the per-task errors, and ``failed_tasks``, how many
        are above 5%, over the selected tasks that have an error in ``metrics`` (all of
        them over the held-out split; on a training batch, the tasks present in it)."""
        per_task = {
            n: metrics[f"error_task_{n}"]
            for n in self.config.task_numbers
            if f"error_task_{n}" in metrics
        }
        if not per_task:
            return metrics
        out = {k: v for k, v in metrics.items() if not k.startswith("error_task_")}
        out["error"] = sum(per_task.values()) / len(per_task)
        out["failed_tasks"] = float(sum(e > FAIL_THRESHOLD for e in per_task.values()))
        out.update({f"error_task_{n}": e for n, e in per_task.items()})
        return out


def build_vocabulary(questions: Sequence[Question]) -> list[str]:
    """``<unk>`` then the sorted tokens of the questions' stories and questions."""
    tokens: set[str] = set()
    stories = {id(q.story): q.story for q in questions}
    for story in stories.values():
        for sentence in story.sentences:
            tokens.update(sentence)
    for q in questions:
        tokens.update(q.tokens)
    return [UNKNOWN, *sorted(tokens)]


def validation_split(count: int, task: int) -> tuple[list[int], list[int]]:
    """The training and validation indices of a task's ``count`` training questions:
    a tenth (``count // 10``) of them, chosen with a fixed seed, for validation."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(VALID_SEED + task))
    held = sorted(order[: count // 10].tolist())
    out = set(held)
    return [i for i in range(count) if i not in out], held
