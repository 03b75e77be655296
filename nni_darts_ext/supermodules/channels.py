"""Which channels a mixed operation's candidates see: the cells slot's channels piece.

Without one, every candidate sees all its input's channels and a cell node sums its incoming
edges' mixtures (DARTS, :func:`~.batched_edges.mix_edges`). A technique that changes that (PC-DARTS's
partial channels, :class:`~.partial_channel.ChannelSplit`) gives the cells slot an object of
this form; the supernet modules (:mod:`~.designed_cell`) call it and know nothing else of it.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from torch import Tensor, nn


class Channels(Protocol):
    """How the candidates are built for the channels they see, and how a node mixes them."""

    weighs_edges: bool
    """Whether each cell node weighs its incoming edges with learned ``softmax(beta)`` (PC-DARTS's
    edge normalization); the derivation then scores an edge by its best operation's weight times
    the edge's weight."""

    def edge(self, operations: nn.ModuleDict, label: str) -> nn.ModuleDict:
        """A cell edge's ``operations`` (``label``: the edge) as the node will run them."""

    def candidate(self, module: nn.Module, label: str) -> nn.Module:
        """A free ``LayerChoice`` 's candidate ``module`` (``label``: ``CHOICE/NAME``) as the layer will run it."""

    def node_output(self, inputs: Sequence[Tensor], candidates: Sequence[Sequence[nn.Module]],
                    weights: Sequence[Tensor], edge_weights: Tensor | None, label: str,
                    drawn: Sequence[int | None]) -> Tensor:
        """A node's (or a free layer's, with one input) mixture of its edges' ``candidates``, each
        edge's weighed by ``weights`` and, where given, the edge by ``edge_weights``; ``drawn``:
        per edge the one candidate that runs, or ``None`` (:func:`~.batched_edges.mix_edges`)."""
