"""Every use of NNI 3.0 beyond its public API, in one place.

Each function says what NNI does there and why the package needs it. ``tests/test_nni_internals.py``
checks the attributes, signatures and behaviour these rely on against the installed NNI, so that an
NNI release that moves one of them fails there, by name, rather than deep inside a search.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from torch import Tensor, nn

ALPHA = '_arch_alpha'
"""Where NNI's differentiable modules keep their architecture weights: one vector for a mixed layer or
input, a ``ParameterDict`` by label for a cell (one vector per edge) or a repeat."""

Module = TypeVar('Module', bound=type)


def import_strategies() -> None:
    """Import ``nni.nas.strategy`` before any of NNI's one-shot modules.

    NNI 3.0's strategy package imports its one-shot strategies inside a ``try``: imported after
    ``nni.nas.oneshot`` the import circle fails quietly and ``nni.nas.strategy.DARTS`` stays a stub
    class. NNI 3.0 also predates torch 2.14 and warns about torch's new non-module classes on
    import; the warning is quieted for this import alone."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*is found to be not a nn.Module', category=RuntimeWarning)
        import nni.nas.strategy  # noqa: F401


def architecture_parameters(*own: str) -> Callable[[Module], Module]:
    """A class decorator: the architecture parameters NNI's ``arch_parameters()`` yields for the
    class are ``_arch_alpha`` and the attributes named in ``own``.

    NNI's differentiable modules yield the attributes listed in their ``_arch_parameter_names``;
    PC-DARTS's edge-normalization vectors must be among them to be trained as architecture weights."""
    def declare(cls: Module) -> Module:
        cls._arch_parameter_names = [ALPHA, *own]
        return cls
    return declare


def architecture_weights(module: nn.Module) -> Any:
    """A differentiable module's architecture weights (:data:`ALPHA`)."""
    return getattr(module, ALPHA)


def normalization(module: nn.Module) -> nn.Module:
    """What a differentiable module's forward pass weighs its candidates by: NNI's ``_softmax``, the
    strategy's ``configure_softmax()`` (``nn.Softmax(-1)`` unless a technique gives another weighing,
    :mod:`~nni_darts_ext.supermodules.weighing`)."""
    return module._softmax


def set_architecture_weights(module: nn.Module, weights: nn.Parameter | nn.ParameterDict, softmax: nn.Module) -> None:
    """Give a module built past NNI's constructor the weights and normalization NNI's own
    ``arch_parameters()``, ``resample()`` and ``export()`` read."""
    setattr(module, ALPHA, weights)
    module._softmax = softmax


def forward_weights(module: nn.Module) -> Tensor:
    """The weights a mixed layer's forward pass mixes its candidates with: its weighing of its one vector."""
    return normalization(module)(architecture_weights(module))


def weighted_sum(layer: nn.Module, outputs: list[Tensor], weights: Tensor) -> Tensor:
    """NNI's differentiable layer's mixture of its candidates' ``outputs`` by ``weights`` (its
    ``_reduction``: ``sum_i w_i * outputs_i``, the weights broadcast over each output)."""
    return layer._reduction(outputs, weights)


def probabilities(module: nn.Module) -> Tensor:
    """A mixed layer's or input's probabilities, ``softmax(alpha)`` of its one weight vector, whatever
    its forward pass weighs by."""
    return architecture_weights(module).softmax(-1)


def probabilities_by_label(module: nn.Module) -> dict[str, Tensor]:
    """A repeat's probabilities, ``softmax(alpha)`` of each label's vector."""
    return {label: weights.softmax(-1) for label, weights in architecture_weights(module).items()}


def random_state(strategy: Any) -> Any:
    """The ``numpy`` generator NNI's ``Random`` strategy draws from, seeded by its ``seed``: the
    package's uniform search draws every choice from it, so that a seed gives one architecture."""
    return strategy._random_state


def init_as_sampling_cell(cell: nn.Module, *arguments: Any) -> None:
    """Build ``cell``, a subclass of NNI's ``DifferentiableMixedCell``, as NNI's ``PathSamplingCell``.

    NNI's differentiable cell gives every edge the same operations and one weight vector over all
    of them; P-DARTS's cells keep different operations per edge, so they take the sampling cell's
    edges (``arguments``: its constructor's) and make their vectors themselves."""
    from nni.nas.oneshot.pytorch.supermodule.sampling import PathSamplingCell
    PathSamplingCell.__init__(cell, *arguments)


def init_as_layer_choice(layer: nn.Module, candidates: Any, label: str) -> None:
    """Build ``layer``, a subclass of NNI's ``DifferentiableMixedLayer``, by ``LayerChoice`` 's
    constructor alone: NNI's wants a weight for every candidate, P-DARTS's layers keep a subset,
    named as the user's ``LayerChoice`` names them."""
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer
    super(DifferentiableMixedLayer, layer).__init__(candidates, label=label)


@contextmanager
def architecture_step_held_back(module: Any) -> Iterator[None]:
    """Within: NNI's ``DartsLightningModule.training_step`` takes its weight step alone.

    NNI steps the architecture in its training step unless the epoch is below ``warmup_epochs``;
    the package's estimators step it themselves, then leave NNI the weight step, the learning-rate
    schedule and the logging as NNI's DARTS takes them."""
    warmup_epochs = module.warmup_epochs
    module.warmup_epochs = module.trainer.current_epoch + 1
    try:
        yield
    finally:
        module.warmup_epochs = warmup_epochs


def retraced(traced: Any, **changed: Any) -> Any:
    """A new object of an ``nni.trace`` 'd class (NNI's Lightning ``Trainer``), built from the
    arguments it was traced with and ``changed``. P-DARTS gives each stage a fresh trainer with
    that stage's ``max_epochs``."""
    return traced.trace_symbol(*traced.trace_args, **{**traced.trace_kwargs, **changed})


def traced_argument(traced: Any, name: str) -> Any:
    """The keyword argument ``name`` an ``nni.trace`` 'd object was built with (``None`` if not
    given, or not traced)."""
    return (getattr(traced, 'trace_kwargs', None) or {}).get(name)
