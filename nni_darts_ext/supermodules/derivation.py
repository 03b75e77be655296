"""Deriving a discrete cell from a supernet cell's scores, in NNI's cell labels.

DARTS keeps, for each intermediate node, the incoming edges whose best non-zero operation
scores highest, each with that operation. The result uses the labels an NNI ``Cell``
exports and freezes with: ``CELL/op_NODE_SLOT`` (an operation name) and
``CELL/input_NODE_SLOT`` (a one-element list with the input node).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ..architecture import input_label, operation_label

EdgeScore = tuple[float, int, str]
"""(score of the edge's best operation, input node, that operation)."""


def derive_cell(label: str, nodes: Iterable[int], ops_per_node: int, memo: dict[str, Any],
                edge_scores: Callable[[int], list[EdgeScore]]) -> dict[str, Any]:
    """Each node's ``ops_per_node`` best-scoring incoming edges, skipping nodes already in ``memo``
    (exported by an earlier cell of the same label). A node with fewer incoming edges than
    slots repeats its best ones, as NNI's cells do."""
    exported: dict[str, Any] = {}
    for node in nodes:
        labels = [(operation_label(label, node, slot), input_label(label, node, slot)) for slot in range(ops_per_node)]
        if all(op in memo and source in memo for op, source in labels):
            continue
        ranked = sorted(edge_scores(node), reverse=True)
        for slot, (chosen_operation, chosen_input) in enumerate(labels):
            _, source, operation = ranked[slot % len(ranked)]
            exported[chosen_operation] = operation
            exported[chosen_input] = [source]
    return exported
