"""What the parts in a search's slots are to the search: the interfaces of the estimator, an
architecture term and the schedule, and what the search hands its schedule. A leaf: it imports no
other module of the strategies."""

from __future__ import annotations

from typing import Any, Callable, Protocol

import pytorch_lightning as pl
from torch import Tensor

from ..hypergradient import BilevelProblem
from ..supermodules.designed_cell import SurvivingOperations

Estimator = Callable[[BilevelProblem], list[Tensor]]
"""The architecture gradient of one step, per architecture parameter."""

SupernetBuilder = Callable[[Any, SurvivingOperations], Any]
"""NNI's supernet of a model space, with the cells slot's modules; each pruned mixed operation keeps
the candidates the mapping names (P-DARTS's stages; empty: all)."""

ModuleOptions = Callable[[], dict[str, Any]]
"""The keyword arguments of the search's Lightning module
(:class:`~nni_darts_ext.strategies.search_module.SearchModule`) as the search's options stand now
(the trial sets the architecture learning rate after the strategy is built)."""


class ArchitectureTerm(Protocol):
    """A differentiable cost of the architecture alone, added to the validation loss of every
    architecture step (e.g. LA-DARTS's ``lambda * predicted latency``)."""

    def __call__(self, module: pl.LightningModule) -> Tensor:
        """The cost as a scalar tensor built from the search module's architecture parameters."""

    def diagnostics(self, module: pl.LightningModule) -> dict[str, float]:
        """What the per-epoch record should carry about the term (e.g. ``expected_latency_ms``)."""


class Schedule(Protocol):
    """How a search runs: the supernets it builds, its Lightning module and evaluator, its budget."""

    def attach(self, build_supernet: SupernetBuilder, module_options: ModuleOptions) -> None:
        """What the search hands the schedule before it runs: how to build a supernet, and the
        options of the search's Lightning module."""

    def supernet(self, model: Any) -> Any:
        """The supernet the search starts on, from the ``model`` space."""

    def prepare(self, evaluator: Any) -> None:
        """Read what the schedule needs from the user's evaluator (P-DARTS: its ``max_epochs``)."""

    def search_module(self, training_module: Any) -> pl.LightningModule:
        """The Lightning module the first supernet is searched with."""

    def evaluator(self, mutated: Any) -> Any:
        """The evaluator that runs the search, from NNI's (P-DARTS: one that runs the stages)."""

    def architecture_epochs(self, search_epochs: int, warmup_epochs: int) -> int:
        """How many of ``search_epochs`` take architecture steps."""

    def check_trial(self, search_epochs: int, warmup_epochs: int, early_stop: str) -> None:
        """Refuse a search budget or an early stop the schedule cannot run."""

    def summary(self) -> dict[str, Any]:
        """What the trial's final result carries about the schedule."""
