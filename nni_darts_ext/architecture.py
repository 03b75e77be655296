"""Reading an exported architecture: its cells' edges, collapse diagnostics, a compact string.

NNI's ``Cell`` exports two choices per operation slot: ``CELL/op_NODE_K`` (the operation) and
``CELL/input_NODE_K`` (a one-element list with the input node). Node 0 and 1 are the cell's
inputs (the two previous cells); nodes 2, 3, ... are its intermediate nodes.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

SKIP_CONNECT = 'skip_connect'
NONE = 'none'  # the zero operation, where a space lists it among the candidates (NAS-Bench-201)
PARAMETER_FREE = {'skip_connect', 'max_pool_3x3', 'avg_pool_3x3', 'max_pool_2x2', 'avg_pool_2x2',
                  'max_pool_5x5', 'avg_pool_5x5', 'max_pool_7x7'}

CELL_CHOICE = re.compile(r'^(?P<cell>.+)/(?P<kind>op|input)_(?P<node>\d+)_(?P<slot>\d+)$')
"""A label of NNI's cell choices: ``kind`` ``op`` (the operation) or ``input`` (its input node)."""


def choice_name(kind: str, node: int, slot: int) -> str:
    """A cell choice's label inside its cell's label scope: ``op_NODE_SLOT`` or ``input_NODE_SLOT``."""
    return f'{kind}_{node}_{slot}'


def operation_label(cell: str, node: int, slot: int) -> str:
    """The label of cell ``cell``'s operation choice ``slot`` of ``node``: ``CELL/op_NODE_SLOT``."""
    return f'{cell}/{choice_name("op", node, slot)}'


def input_label(cell: str, node: int, slot: int) -> str:
    """The label of the input choice of that slot: ``CELL/input_NODE_SLOT``."""
    return f'{cell}/{choice_name("input", node, slot)}'


def edge_label(cell: str, node: int, source: int) -> str:
    """The label of a supernet cell's edge ``source -> node`` and of its architecture vector over the
    operations: ``CELL/NODE_SOURCE``, as NNI's differentiable cell names it."""
    return f'{cell}/{node}_{source}'


def edge_ends(edge: str) -> tuple[int, int]:
    """``(node, source)`` of an edge label ``CELL/NODE_SOURCE``."""
    node, source = edge.rsplit('/', 1)[1].split('_')
    return int(node), int(source)


def node_label(cell: str, node: int) -> str:
    """The label of the vector over ``node`` 's incoming edges (PC-DARTS's edge normalization): ``CELL/NODE``."""
    return f'{cell}/{node}'


def cell_edges(architecture: Mapping[str, Any]) -> dict[str, list[tuple[int, int, str]]]:
    """``{cell label: [(input node, node, operation), ...]}`` for every cell-style choice."""
    edges: dict[str, list[tuple[int, int, str]]] = {}
    for label, operation in sorted(architecture.items()):
        match = CELL_CHOICE.match(label)
        if not match or match['kind'] != 'op':
            continue
        cell, node, slot = match['cell'], int(match['node']), int(match['slot'])
        chosen = architecture.get(input_label(cell, node, slot))
        if chosen is None:
            continue
        source = chosen[0] if isinstance(chosen, (list, tuple)) else chosen
        edges.setdefault(cell, []).append((int(source), node, str(operation)))
    return edges


def normal_operations(architecture: Mapping[str, Any]) -> list[str]:
    """The operations of the normal cell; for spaces without cells, every operation choice."""
    edges = cell_edges(architecture)
    if 'normal' in edges:
        return [op for _, _, op in edges['normal']]
    return [str(v) for k, v in architecture.items() if isinstance(v, str) and not k.startswith('reduce')]


def skip_connects(architecture: Mapping[str, Any]) -> int:
    """Skip-connects in the normal cell: the count that grows when DARTS collapses."""
    return sum(op == SKIP_CONNECT for op in normal_operations(architecture))


def parameter_free(architecture: Mapping[str, Any]) -> int:
    """Parameter-free operations (skip-connects and pooling) in the normal cell."""
    return sum(op in PARAMETER_FREE for op in normal_operations(architecture))


def none_edges(architecture: Mapping[str, Any]) -> int:
    """Edges of the normal cell whose operation is the zero operation: edges the cell dropped."""
    return sum(op == NONE for op in normal_operations(architecture))


def normalized(distribution: Mapping[Any, float]) -> dict[Any, float]:
    """A choice's distribution renormalised over the values listed: NNI's cells leave the zero
    operation out of ``export_probs``, so theirs becomes the distribution among the real operations."""
    total = sum(distribution.values())
    return {value: p / total for value, p in distribution.items()}


def entropy(distribution: Mapping[Any, float]) -> float:
    """Entropy (nats) of one choice's distribution, renormalised over the values listed."""
    return -sum(p * math.log(p) for p in normalized(distribution).values() if p > 0)


def mean_entropy(probabilities: Mapping[str, Mapping[Any, float]]) -> float:
    """Mean entropy (nats) of the architecture distributions, one per choice; 0 when there are none
    (``ln 7`` when uniform over DARTS's seven operations)."""
    entropies = [entropy(distribution) for distribution in probabilities.values()]
    return sum(entropies) / len(entropies) if entropies else 0.0


def normalized_entropy(probabilities: Mapping[str, Mapping[Any, float]]) -> float:
    """Mean over choices of ``H(p) / ln(candidates)``: 1 when every choice is uniform, 0 when every
    one is decided, whatever the candidate counts; a choice of one candidate counts as decided."""
    fractions = [entropy(d) / math.log(len(d)) if len(d) > 1 else 0.0 for d in probabilities.values()]
    return sum(fractions) / len(fractions) if fractions else 0.0


NOT_CONVERGED_ABOVE = 0.95
"""A search that ends with a normalized entropy above this has left its architecture weights near
uniform: it has not searched, and what it exports is a tie-break of noise."""


def converged(normalized_entropy: float) -> bool:
    """Whether a search that ended at ``normalized_entropy`` moved its weights from uniform."""
    return normalized_entropy <= NOT_CONVERGED_ABOVE


def describe(architecture: Mapping[str, Any]) -> str:
    """A one-line form: ``normal: 2<sep_conv_3x3(0)+skip_connect(1) 3<... | reduce: ...``."""
    edges = cell_edges(architecture)
    if not edges:
        return ' '.join(f'{k}={v}' for k, v in sorted(architecture.items()))
    parts = []
    for cell, cell_edge_list in edges.items():
        nodes: dict[int, list[str]] = {}
        for source, node, op in cell_edge_list:
            nodes.setdefault(node, []).append(f'{op}({source})')
        parts.append(f'{cell}: ' + ' '.join(f'{node}<' + '+'.join(ins) for node, ins in sorted(nodes.items())))
    return ' | '.join(parts)
