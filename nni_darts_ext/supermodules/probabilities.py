"""The one reader of a supernet's architecture parameters: every vector, by label, as probabilities.

Every supernet cell of this package (:class:`~.supernet_cell.SupernetCell`) gives each edge's
row through ``edge_probabilities`` (over the cell's candidates, then the zero operation); the free choices give ``softmax(alpha)`` over their
candidates (NNI's differentiable layer, input and repeat, and this package's layers over the
label's whole domain). Code outside ``supermodules/`` reads architecture weights through
:func:`probability_rows` alone.
"""

from __future__ import annotations

from torch import Tensor, nn
from nni.nas.oneshot.pytorch.supermodule.differentiable import (DifferentiableMixedInput, DifferentiableMixedLayer,
                                                                DifferentiableMixedRepeat)

from ..nni_internals import probabilities, probabilities_by_label
from .factorized import FactorizedLayer
from .designed_cell import DesignedLayer
from .supernet_cell import SupernetCell


def probability_rows(supernet: nn.Module) -> dict[str, Tensor]:
    """Every architecture vector of ``supernet`` by label, as a differentiable row of probabilities.

    A cell edge (``CELL/NODE_SOURCE``) gives a row over its cell's ``op_names`` then the zero
    operation (0 for the operations P-DARTS dropped; with PC-DARTS's edge normalization, weighed
    by the probability the edge is kept); a free ``LayerChoice`` a row over its candidates, an
    ``InputChoice`` over its inputs, a ``Repeat`` over its depths. Modules sharing a label give
    one row.
    """
    rows: dict[str, Tensor] = {}
    for module in supernet.modules():
        if isinstance(module, SupernetCell):
            for edge in module.edges:
                if edge not in rows:  # each cell gives its own rows (P-DARTS's survivors, PC-DARTS's kept edges)
                    rows[edge] = module.edge_probabilities(edge)
        elif isinstance(module, DesignedLayer):
            rows.setdefault(module.label, module.probabilities())
        elif isinstance(module, FactorizedLayer):
            rows.setdefault(module.label, module.candidate_weights())
        elif isinstance(module, (DifferentiableMixedLayer, DifferentiableMixedInput)):
            rows.setdefault(module.label, probabilities(module))
        elif isinstance(module, DifferentiableMixedRepeat):
            for label, row in probabilities_by_label(module).items():
                rows.setdefault(label, row)
    return rows


def cell_operations(supernet: nn.Module) -> dict[str, tuple[str, ...]]:
    """Per cell label, the operations its ``edge_probabilities`` rows are over (the zero operation after them)."""
    return {module.label: tuple(module.op_names) for module in supernet.modules()
            if isinstance(module, SupernetCell)}
