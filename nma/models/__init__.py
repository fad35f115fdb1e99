"""Ready-made memory models, each built from registered components.

* :class:`NeuralTuringMachine`: LSTM + ``ntm`` (Graves et al. 2014).
* :class:`DifferentiableNeuralComputer`: LSTM + ``dnc`` (Graves et al. 2016).
* :class:`MemoryAugmentedNetwork`: LSTM + ``lrua`` (Santoro et al. 2016).
* :class:`MemoryEnhancedRNN`: GRU (or LSTM) + any memory, ``kv`` by default.
* :class:`MemoryTransformer`: transformer blocks with kNN memories (Wu et al. 2022).
* :class:`ReasoningNetwork`: MLP + multi-hop ``kv`` (Sukhbaatar et al. 2015).
* :class:`KnowledgeGraphModel`: LSTM + ``associative`` (Ramsauer et al. 2020).
* :class:`TemporalMemoryModel`: LSTM + ``hierarchical``.
* :class:`ContinualLearningModel`: LSTM + ``ntm`` with one output head per task.

All take ``(input_size, hidden_size, memory_size, memory_dim, output_size=None, ...)``
and are called as ``outputs, state = model(inputs, state=None)``. See
docs/python-api.md.
"""

from __future__ import annotations

from nma.models.continual_learning_model import ContinualLearningModel
from nma.models.differentiable_neural_computer import DifferentiableNeuralComputer
from nma.models.knowledge_graph_model import KnowledgeGraphModel
from nma.models.memory_augmented_network import MemoryAugmentedNetwork
from nma.models.memory_enhanced_rnn import MemoryEnhancedRNN
from nma.models.memory_transformer import MemoryTransformer
from nma.models.neural_turing_machine import NeuralTuringMachine
from nma.models.reasoning_network import ReasoningNetwork
from nma.models.recurrent_model import RecurrentMemoryModel
from nma.models.temporal_memory_model import TemporalMemoryModel

__all__ = [
    "ContinualLearningModel",
    "DifferentiableNeuralComputer",
    "KnowledgeGraphModel",
    "MemoryAugmentedNetwork",
    "MemoryEnhancedRNN",
    "MemoryTransformer",
    "NeuralTuringMachine",
    "ReasoningNetwork",
    "RecurrentMemoryModel",
    "TemporalMemoryModel",
]
