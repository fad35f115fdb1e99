"""``KnowledgeGraphModel``: ready-made, on the registered ``associative`` memory."""

from __future__ import annotations

from nma.models.recurrent_model import NamedMemoryModel


class KnowledgeGraphModel(NamedMemoryModel):
    """A model for facts and relations: an LSTM controller with the ``associative``
    memory (modern Hopfield retrieval, Ramsauer et al. 2020), which stores (key, value)
    associations such as (head + relation, tail) and retrieves by similarity. Feed it
    embedded facts as a sequence, then the query; entity and relation embeddings are
    yours to add in front (``nn.Embedding``).

    ``outputs, state = model(inputs, state=None)``: ``inputs`` ``(T, B, input_size)``
    (``(B, T, input_size)`` with ``batch_first``) → ``outputs`` ``(T, B, output_size)``,
    logits at every step, and the final state (see
    :class:`~nma.models.recurrent_model.RecurrentMemoryModel`).

    Args:
        input_size: width of one step's input.
        hidden_size: the controller's width.
        memory_size: slots of the memory.
        memory_dim: width of one slot.
        output_size: width of one step's output; ``input_size`` if ``None``.
        read_heads: read heads (each reads ``memory_dim`` values).
        controller: a registered controller, ``lstm`` by default (``lstm``, ``gru``,
            ``mlp``, ``transformer``).
        batch_first: inputs and outputs are ``(B, T, ...)``.
        memory_options: further options of the ``associative`` memory (docs/memories.md).
    """

    memory_name = "associative"
