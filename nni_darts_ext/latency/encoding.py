"""The architecture encoding LA-DARTS's predictors read: one probability row per decision of the space.

Each kind of choice gives rows:

- an NNI ``Cell`` type: one row per edge ``(node, source)`` from every earlier node to every
  intermediate node, over the cell's operations and, last, the zero operation (NNI's differentiable
  cell keeps one architecture vector per edge, ``CELL/NODE_SOURCE``). A discrete architecture keeps
  ``slots`` edges per node: the chosen operation's one-hot on a kept edge, the zero operation's on
  every other edge.
- a free ``LayerChoice``: one row over its candidates.
- a free ``InputChoice`` of ``k`` inputs: one row over its inputs giving each input its share of the
  choice: ``1/k`` on each chosen input of an architecture, NNI's mixing weights ``softmax(alpha)`` in
  the supernet (an input's probability of being chosen is ``k`` times its share). The row sums to 1
  like every other; the lookup table's entry of an input is the choice's whole in-place time when the
  input is among the chosen, so that the shares add up to it.
- a ``Repeat`` of chosen depth: one row over the depths.

A choice that only some architectures hold (inside a block of a ``Repeat`` beyond its least depth,
or inside one candidate of a ``LayerChoice``) has the zero column too: in an architecture without it
its row is the zero one-hot, in the supernet ``p * softmax(alpha) + (1 - p) * onehot(zero)``, ``p``
the probability of what holds it, read from the holder's row.

A discrete architecture's encoding is a vertex of the product of simplices whose interior points are
the supernet's softmaxes (Xu et al., arXiv 2001.06392): a predictor trained on vertices is a
differentiable function of the architecture parameters. Rows narrower than the widest are padded
with zeros.
"""

from __future__ import annotations

import dataclasses
import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, FrozenSet, Tuple

import torch
from torch import Tensor, nn
from nni.mutable import Categorical, Mutable
from nni.nas.nn.pytorch import Cell, InputChoice, LayerChoice, ModelSpace, Repeat

from ..architecture import CELL_CHOICE, edge_label, input_label, operation_label
from ..errors import ConfigError
from ..supermodules.probabilities import cell_operations as supernet_cell_operations
from ..supermodules.probabilities import probability_rows

ZERO = 'none'
"""The zero column: the zero operation of a cell's edge (NNI's differentiable cell adds it to every
edge), the absence of a choice that some architectures lack."""


Presence = Tuple[Tuple[str, FrozenSet[Any]], ...]
"""Where a choice exists: in the architectures whose choice ``label`` takes one of ``values``, for
every ``(label, values)`` (outermost first); empty for a choice every architecture holds."""


@dataclass(frozen=True)
class Row:
    """One row of the encoding: the supernet's label of its architecture vector, and its columns
    (operations, candidate names, input indices or depths; :data:`ZERO` last where it has one)."""
    label: str
    columns: tuple[Any, ...]


@dataclass(frozen=True)
class Part:
    """A module of a deployed network timed in place, with the row and the columns its time goes to."""
    module: nn.Module
    row: int
    columns: tuple[int, ...]


class Choice(ABC):
    """A decision of the space: its rows, how an architecture and the supernet fill them, random and
    probe values, and the modules of a deployed network that time its candidates in place."""
    label: str
    presence: Presence = ()

    @property
    @abstractmethod
    def rows(self) -> tuple[Row, ...]:
        """The choice's rows of the encoding."""

    @property
    @abstractmethod
    def labels(self) -> tuple[str, ...]:
        """The architecture's labels this choice decides."""

    @property
    def vector_labels(self) -> tuple[str, ...]:
        """The labels of the supernet's architecture vectors its rows read."""
        return tuple(row.label for row in self.rows)

    def held(self, architecture: dict[str, Any]) -> bool:
        """Whether ``architecture`` holds this choice."""
        return all(architecture[label] in values for label, values in self.presence)

    @abstractmethod
    def one_hot(self, architecture: dict[str, Any]) -> list[list[float]]:
        """The choice's rows in a discrete architecture."""

    @abstractmethod
    def expected(self, vectors: dict[str, Tensor], held: Tensor | None) -> list[Tensor]:
        """The supernet's rows from its architecture ``vectors`` and the probability that what holds
        the choice is chosen (``None`` for a choice every architecture holds)."""

    @abstractmethod
    def sample(self, generator: random.Random) -> dict[str, Any]:
        """Uniformly random values of the choice's labels."""

    @property
    @abstractmethod
    def probes(self) -> int:
        """Probe architectures it takes to put every candidate in place once."""

    @abstractmethod
    def probe(self, index: int) -> dict[str, Any]:
        """The choice's values in its probe ``index``."""

    @abstractmethod
    def parts(self, network: nn.Module, architecture: dict[str, Any]) -> list[tuple[nn.Module, int, tuple[int, ...]]]:
        """``(module, row of this choice, columns)`` of every module of the deployed ``network`` that
        times the candidates ``architecture`` chose."""


@dataclass(frozen=True)
class Edge:
    """The edge from node ``source`` to intermediate node ``node`` in cells labelled ``cell``."""
    cell: str
    node: int
    source: int

    @property
    def label(self) -> str:
        """The supernet's label of the edge's architecture vector."""
        return edge_label(self.cell, self.node, self.source)


@dataclass(frozen=True)
class CellType(Choice):
    """The NNI ``Cell`` s labelled ``label`` (all alike): a row per edge.

    Attributes
    ----------
    nodes
        The intermediate nodes (the first is the number of the cell's inputs).
    operations
        The candidate operations of every slot, in the cell's order: the columns, then :data:`ZERO`.
    slots
        Operations per intermediate node (two in DARTS).
    paths
        Where the cells are in a deployed network.
    """
    label: str
    nodes: tuple[int, ...]
    operations: tuple[Any, ...]
    slots: int
    paths: tuple[str, ...]

    @classmethod
    def of(cls, cell: Cell, path: str) -> CellType:
        """Read the cell's nodes and operations from its choices (``CELL/op_NODE_SLOT``, ``CELL/input_NODE_SLOT``)."""
        nodes: set[int] = set()
        slots: set[int] = set()
        operations: set[tuple[Any, ...]] = set()
        for label, mutable in cell.simplify().items():
            match = CELL_CHOICE.match(label)
            if match is None or match['cell'] != cell.label:
                raise ConfigError(f'{label!r} is a choice nested in an operation of NNI Cell {cell.label!r}; '
                                  "LA-DARTS encodes a cell's operation and input choices only")
            nodes.add(int(match['node']))
            slots.add(int(match['slot']))
            if match['kind'] == 'op':
                operations.add(tuple(mutable.values))
        if len(operations) != 1:
            raise ConfigError(f'NNI Cell {cell.label!r}: LA-DARTS needs every operation slot of a cell to have the '
                              'same candidates')
        return cls(cell.label, tuple(sorted(nodes)), operations.pop(), len(slots), (path,))

    @property
    def edges(self) -> tuple[Edge, ...]:
        return tuple(Edge(self.label, node, source) for node in self.nodes for source in range(node))

    @property
    def rows(self) -> tuple[Row, ...]:
        return tuple(Row(edge.label, self.operations + (ZERO,)) for edge in self.edges)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label(self.label, node, slot) for node in self.nodes for slot in range(self.slots)
                     for label in (operation_label, input_label))

    def one_hot(self, architecture: dict[str, Any]) -> list[list[float]]:
        rows = {edge: [0.0] * len(self.operations) + [1.0] for edge in self.edges}
        for node in self.nodes:
            for slot in range(self.slots):
                if operation_label(self.label, node, slot) not in architecture:
                    continue
                row = rows[Edge(self.label, node, architecture[input_label(self.label, node, slot)][0])]
                row[-1] = 0.0
                row[self.operations.index(architecture[operation_label(self.label, node, slot)])] += 1.0
        return list(rows.values())

    def expected(self, vectors: dict[str, Tensor], held: Tensor | None) -> list[Tensor]:
        return [vectors[edge.label] for edge in self.edges]

    def sample(self, generator: random.Random) -> dict[str, Any]:
        """Each node's slots on distinct inputs (as DARTS derives them), each slot's operation uniform."""
        architecture: dict[str, Any] = {}
        for node in self.nodes:
            sources = generator.sample(range(node), min(self.slots, node))
            for slot in range(self.slots):
                architecture[operation_label(self.label, node, slot)] = generator.choice(self.operations)
                architecture[input_label(self.label, node, slot)] = [sources[slot % len(sources)]]
        return architecture

    @property
    def probes(self) -> int:
        return len(self.operations) * self._rounds

    @property
    def _rounds(self) -> int:
        return math.ceil(max(self.nodes) / self.slots)

    def probe(self, index: int) -> dict[str, Any]:
        """Every slot on operation ``index // rounds``; in round ``k = index % rounds`` node ``n`` takes
        inputs ``(slots * k + s) mod n``: together the probes put every operation on every edge."""
        operation, k = self.operations[index // self._rounds], index % self._rounds
        probe: dict[str, Any] = {}
        for node in self.nodes:
            for slot in range(self.slots):
                probe[operation_label(self.label, node, slot)] = operation
                probe[input_label(self.label, node, slot)] = [(self.slots * k + slot) % node]
        return probe

    def parts(self, network: nn.Module, architecture: dict[str, Any]) -> list[tuple[nn.Module, int, tuple[int, ...]]]:
        rows = {edge: index for index, edge in enumerate(self.edges)}
        found = []
        for path in self.paths:
            cell = network.get_submodule(path)
            for node_index, node_operations in enumerate(cell.ops):
                node = node_index + cell.num_predecessors
                for slot, module in enumerate(node_operations):
                    edge = Edge(self.label, node, architecture[input_label(self.label, node, slot)][0])
                    column = self.operations.index(architecture[operation_label(self.label, node, slot)])
                    found.append((module, rows[edge], (column,)))
        return found


@dataclass(frozen=True)
class _FreeChoice(Choice):
    """A choice with one row over ``values``, at ``paths`` of a deployed network (one per module that
    shares the label)."""
    label: str
    values: tuple[Any, ...]
    paths: tuple[str, ...]
    presence: Presence = ()

    @property
    def rows(self) -> tuple[Row, ...]:
        return (Row(self.label, self.values + ((ZERO,) if self.presence else ())),)

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label,)

    def weights(self, value: Any) -> list[tuple[int, float]]:
        """The row's columns and weights in an architecture that chose ``value``."""
        return [(self.values.index(value), 1.0)]

    def one_hot(self, architecture: dict[str, Any]) -> list[list[float]]:
        row = [0.0] * len(self.rows[0].columns)
        chosen = self.weights(architecture[self.label]) if self.held(architecture) else [(len(row) - 1, 1.0)]
        for column, weight in chosen:
            row[column] = weight
        return [row]

    def expected(self, vectors: dict[str, Tensor], held: Tensor | None) -> list[Tensor]:
        vector = vectors[self.label]
        return [vector if held is None else torch.cat([held * vector, (1 - held).reshape(1)])]

    def sample(self, generator: random.Random) -> dict[str, Any]:
        return {self.label: generator.choice(self.values)}

    @property
    def probes(self) -> int:
        return len(self.values)

    def probe(self, index: int) -> dict[str, Any]:
        return {self.label: self.values[index]}


@dataclass(frozen=True)
class FreeLayerChoice(_FreeChoice):
    """A ``LayerChoice`` outside any cell: a row over its candidates' names; its chosen candidate is timed."""

    def parts(self, network: nn.Module, architecture: dict[str, Any]) -> list[tuple[nn.Module, int, tuple[int, ...]]]:
        column = self.values.index(architecture[self.label])
        return [(network.get_submodule(path), 0, (column,)) for path in self.paths]


@dataclass(frozen=True)
class FreeInputChoice(_FreeChoice):
    """An ``InputChoice`` outside any cell, of ``chosen`` of its inputs (NNI's DARTS takes one where
    ``n_chosen`` is ``None``): a row of the inputs' shares (module docstring); the choice's module
    (its reduction) is timed, its time given to every chosen input."""
    chosen: int = 1

    def weights(self, value: Any) -> list[tuple[int, float]]:
        return [(self.values.index(index), 1.0 / len(value)) for index in value]

    def sample(self, generator: random.Random) -> dict[str, Any]:
        return {self.label: sorted(generator.sample(self.values, self.chosen))}

    @property
    def probes(self) -> int:
        return math.ceil(len(self.values) / self.chosen)

    def probe(self, index: int) -> dict[str, Any]:
        """Inputs ``(chosen * index + s) mod n``: together the probes choose every input."""
        return {self.label: sorted({self.values[(self.chosen * index + s) % len(self.values)]
                                    for s in range(self.chosen)})}

    def parts(self, network: nn.Module, architecture: dict[str, Any]) -> list[tuple[nn.Module, int, tuple[int, ...]]]:
        columns = tuple(self.values.index(index) for index in architecture[self.label])
        return [(network.get_submodule(path), 0, columns) for path in self.paths]


@dataclass(frozen=True)
class RepeatDepth(_FreeChoice):
    """The depth of a ``Repeat``: a row over the depths. Block ``j`` exists at the depths above ``j``;
    each block is timed (what is not a choice of its own counts here), its time given to those depths.
    Probes take the greatest depth, which holds every block."""

    @property
    def probes(self) -> int:
        return 1

    def probe(self, index: int) -> dict[str, Any]:
        return {self.label: max(self.values)}

    def parts(self, network: nn.Module, architecture: dict[str, Any]) -> list[tuple[nn.Module, int, tuple[int, ...]]]:
        return [(block, 0, tuple(column for column, depth in enumerate(self.values) if depth > index))
                for path in self.paths for index, block in enumerate(network.get_submodule(path))]


@dataclass(frozen=True)
class Encoding:
    """The encoding of a space: the rows of every choice, cell types first (by label), then the free
    choices in the order of the space's modules (a holder before what it holds).

    Nested choices and ``Repeat`` s are encoded (module docstring); refused, with a
    :class:`~nni_darts_ext.errors.ConfigError`, are choices of other kinds (a ``Mutable`` module's
    width or kernel size, as in NNI's ``MobileNetV3Space``), choices nested in a cell's operations,
    cells inside a choice, depths that are expressions, and modules sharing a label unalike.
    """
    choices: tuple[Choice, ...]

    @classmethod
    def of(cls, model_space: ModelSpace) -> Encoding:
        found: dict[str, Choice] = {}
        _visit(model_space, '', (), found)
        covered = {label for choice in found.values() for label in choice.labels}
        for label, mutable in model_space.simplify().items():
            if label not in covered:
                raise ConfigError(f'LA-DARTS encodes NNI Cells, LayerChoice, InputChoice and Repeat depths; {label!r} '
                                  f'is a choice of another kind ({type(mutable).__name__}: a width or kernel size of '
                                  'a Mutable module, as in MobileNetV3Space), which has no module of its own to time '
                                  '(search this space with darts, darts2, stabilized or pdarts)')
        if not found:
            raise ConfigError('the space has no choice for LA-DARTS to encode (an NNI Cell, LayerChoice, InputChoice '
                              'or Repeat of chosen depth)')
        cells = sorted((choice for choice in found.values() if isinstance(choice, CellType)), key=lambda c: c.label)
        return cls((*cells, *(choice for choice in found.values() if not isinstance(choice, CellType))))

    @property
    def rows(self) -> tuple[Row, ...]:
        return tuple(row for choice in self.choices for row in choice.rows)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each row's label: a cell edge's ``CELL/NODE_SOURCE``, a free choice's or a depth's own."""
        return tuple(row.label for row in self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns of the widest row)``."""
        return len(self.rows), max(len(row.columns) for row in self.rows)

    def one_hot(self, architecture: dict[str, Any]) -> Tensor:
        """The vertex encoding of a discrete architecture (as ``export`` gives it)."""
        encoding = torch.zeros(self.shape)
        rows = [row for choice in self.choices for row in choice.one_hot(architecture)]
        for index, row in enumerate(rows):
            encoding[index, :len(row)] = torch.tensor(row)
        return encoding

    def sample(self, generator: random.Random) -> dict[str, Any]:
        """A uniformly random architecture in ``export`` 's form (every choice decided, held or not)."""
        return {label: value for choice in self.choices for label, value in choice.sample(generator).items()}

    def probes(self) -> list[dict[str, Any]]:
        """Architectures that together put every candidate of every choice in place: in each, every held
        choice takes its next probe value, until each has taken all of them."""
        taken = [0] * len(self.choices)
        probes: list[dict[str, Any]] = []
        while any(count < choice.probes for count, choice in zip(taken, self.choices)):
            probe: dict[str, Any] = {}
            for index, choice in enumerate(self.choices):  # a holder decides before what it holds
                held = choice.held(probe)
                probe.update(choice.probe(taken[index] % choice.probes if held else 0))
                taken[index] += held
            probes.append(probe)
        return probes

    def parts(self, network: nn.Module, architecture: dict[str, Any]) -> list[Part]:
        """The modules of ``architecture`` 's deployed ``network`` to time in place, choices in order."""
        parts = []
        offset = 0
        for choice in self.choices:
            if choice.held(architecture):
                parts += [Part(module, offset + row, columns) for module, row, columns in
                          choice.parts(network, architecture)]
            offset += len(choice.rows)
        return parts

    def probabilities(self, supernet: nn.Module) -> Tensor:
        """The supernet's expected encoding: differentiable in the architecture parameters.

        A cell edge's row is the cell's ``edge_probabilities`` (``softmax(alpha)``; with PC-DARTS's edge
        normalization weighed by the probability the edge is kept; a factorized cell's product
        weights); a free choice's, ``softmax(alpha)`` over its candidates, weighed by the
        probability of what holds it (:func:`~nni_darts_ext.supermodules.probabilities.probability_rows`).
        """
        vectors = _architecture_vectors(supernet, {c.label: c.operations for c in self.choices
                                                   if isinstance(c, CellType)})
        by_label = {choice.label: choice for choice in self.choices}
        rows: dict[str, Tensor] = {}
        for choice in self.choices:
            missing = [label for label in choice.vector_labels if label not in vectors]
            if missing:
                raise ConfigError(f'the supernet has no architecture vector for {missing[0]!r} (LA-DARTS reads the '
                                  "differentiable cells and NNI's differentiable mixed layers of this package's "
                                  'strategies)')
            held = None
            if choice.presence:
                holder, values = choice.presence[-1]
                row, holder_values = rows[holder], by_label[holder].values
                held = sum(row[index] for index, value in enumerate(holder_values) if value in values)
            rows.update(zip(choice.vector_labels, choice.expected(vectors, held)))
        width = self.shape[1]
        return torch.stack([nn.functional.pad(rows[label], (0, width - len(rows[label]))) for label in self.labels])


def _architecture_vectors(supernet: nn.Module, cell_operations: dict[str, tuple[Any, ...]]) -> dict[str, Tensor]:
    """Every architecture vector of the supernet by label, as probabilities over its columns
    (:func:`~nni_darts_ext.supermodules.probabilities.probability_rows`), after checking that every
    cell's rows are over the encoding's operations."""
    for label, operations in supernet_cell_operations(supernet).items():
        if label in cell_operations and operations != tuple(cell_operations[label]):
            raise ConfigError(f'cell {label!r} has operations {list(operations)}, the encoding '
                              f'{list(cell_operations[label])}')
    return probability_rows(supernet)


def _visit(module: nn.Module, path: str, presence: Presence, found: dict[str, Choice]) -> None:
    """Add the choices of ``module`` (at ``path`` of a deployed network, held where ``presence`` says)
    to ``found``. A deployed network has a ``LayerChoice`` 's chosen candidate in its place and a
    ``Repeat`` 's blocks as a ``Sequential`` 's."""
    if isinstance(module, Cell):
        if presence:
            raise ConfigError(f'NNI Cell {module.label!r} is inside a choice ({presence[-1][0]!r}); LA-DARTS encodes '
                              'cells that every architecture holds')
        _add(found, CellType.of(module, path))
    elif isinstance(module, LayerChoice):
        _add(found, FreeLayerChoice(module.label, tuple(module.names), (path,), presence))
        for name in module.names:
            _visit(module[name], path, (*presence, (module.label, frozenset({name}))), found)
    elif isinstance(module, InputChoice):
        _add(found, FreeInputChoice(module.label, tuple(range(module.n_candidates)), (path,), presence,
                                    module.n_chosen or 1))
    elif isinstance(module, Repeat):
        depth = _repeat_depth(module, path, presence)
        if depth is not None:
            _add(found, depth)
        for index, block in enumerate(module.blocks):
            deeper = () if depth is None or index < min(depth.values) else \
                ((depth.label, frozenset(d for d in depth.values if d > index)),)
            _visit(block, f'{path}.{index}', (*presence, *deeper), found)
    else:
        for name, child in module.named_children():
            _visit(child, f'{path}.{name}' if path else name, presence, found)


def _repeat_depth(repeat: Repeat, path: str, presence: Presence) -> RepeatDepth | None:
    """The depth choice of ``repeat``, ``None`` for a fixed depth."""
    depth = repeat.depth_choice
    if not isinstance(depth, Mutable):
        return None
    if not isinstance(depth, Categorical):
        raise ConfigError(f'Repeat at {path!r}: LA-DARTS encodes a depth chosen from values (Repeat(..., (min, max)) '
                          f'or a Categorical), not the expression {depth}')
    return RepeatDepth(depth.label, tuple(depth.values), (path,), presence)


def _add(found: dict[str, Choice], choice: Choice) -> None:
    """Add ``choice``; modules sharing its label must be alike (their paths are gathered)."""
    existing = found.get(choice.label)
    if existing is None:
        found[choice.label] = choice
    elif dataclasses.replace(existing, paths=choice.paths) == choice:
        found[choice.label] = dataclasses.replace(existing, paths=existing.paths + choice.paths)
    else:
        raise ConfigError(f'modules labelled {choice.label!r} differ in their candidates or in the architectures '
                          'that hold them; LA-DARTS encodes a shared label on alike modules only')
