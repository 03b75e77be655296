"""Scalable-DARTS (Wang, Xie, Chen, Tian, arXiv 1912.13256): factorized architecture parameters.

A large operation set written as a product of factors (activation x convolution) is searched
with one parameter vector per factor: A + O parameters and O convolution bodies per edge stand
for A x O candidates, where DARTS would need A x O parameters and run A x O operations. The
search loop is DARTS's (first order); the supernet cells differ
(:mod:`~nni_darts_ext.supermodules.factorized`), and the factors' vectors can be updated
jointly (every architecture step updates all) or in turn (:class:`FactorTurns`).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from nni.nas.evaluator.pytorch import Lightning

from ..errors import ConfigError, choose
from ..spaces.factors import FACTORS
from ..supermodules.factorized import FactorizedCell
from .darts import ValidatedDARTS

JOINT, ALTERNATE = 'joint', 'alternate'
FACTOR_UPDATES = (JOINT, ALTERNATE)


class FactorTurns(pl.Callback):
    """Each architecture step updates one factor's vectors, in turn: activation, conv, activation, ...

    Before the architecture optimizer steps, the resting factors' gradients are dropped
    (set to ``None``), so Adam leaves those parameters exactly as they are: no momentum drift,
    no weight decay. The group vectors (factored group vs unfactored candidates vs zero) are
    updated every step. Every process counts the same steps, so data-parallel ranks agree.
    """

    def __init__(self) -> None:
        self.steps = 0

    def training_factor(self) -> str:
        """The factor the next architecture step updates."""
        return FACTORS[self.steps % len(FACTORS)]

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not getattr(optimizer, 'is_arch_optimizer', False):
            return
        training = self.training_factor()
        for cell in pl_module.modules():
            if isinstance(cell, FactorizedCell):
                for factor, parameters in cell.factor_parameters().items():
                    if factor != training:
                        for parameter in parameters:
                            parameter.grad = None
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        return {'steps': self.steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = state_dict['steps']


class ScalableDARTS(ValidatedDARTS):
    """DARTS with factorized architecture parameters on spaces whose cells name combinations ``ACTIVATION+CONV``.

    Every NNI ``Cell`` whose candidates include combinations (``search_spaces/darts_factorized.yml``,
    ``darts_small_factorized.yml``, or a user's cell with such names) becomes a
    :class:`~nni_darts_ext.supermodules.factorized.FactorizedCell`; other choices get NNI's
    differentiable modules. Export picks each edge's best combination (the largest product of
    its factors' weights), in NNI's cell labels, so the result freezes the original space.

    Parameters
    ----------
    factor_updates
        ``'joint'`` (default): every architecture step updates all factors with the gradient of
        the factorized weights, as DARTS updates its one vector: no schedule to tune, and in a
        short search (the quick start's few hundred steps) each factor learns at every step.
        ``'alternate'``: one factor per architecture step, in turn (:class:`FactorTurns`). The
        journal version optimizes the factors in turn so that they do not compete within one
        update; turning at every step (not every epoch) is this package's choice, so that short
        searches alternate too.
    **kwargs
        :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` parameters.

    Raises
    ------
    ConfigError
        From :meth:`mutate_model`, when the space has no factored cell.
    """

    def __init__(self, *, factor_updates: str = JOINT, **kwargs: Any):
        if factor_updates not in FACTOR_UPDATES:
            raise choose('factor_updates', factor_updates, FACTOR_UPDATES)
        super().__init__(**kwargs)
        self.factor_updates = factor_updates

    def default_mutation_hooks(self):
        return [FactorizedCell.mutate, *super().default_mutation_hooks()]

    def mutate_model(self, model):
        supernet = super().mutate_model(model)
        if not any(isinstance(module, FactorizedCell) for module in supernet.modules()):
            raise ConfigError('scalable needs a space whose cells have factored candidates (ACTIVATION+CONV, from a '
                              "YAML space's factors), such as darts_factorized or darts_small_factorized")
        return supernet

    def mutate_evaluator(self, evaluator: Lightning) -> Lightning:
        mutated = super().mutate_evaluator(evaluator)
        callbacks = mutated.trainer.callbacks
        # once per trainer: a second schedule out of step with the first would rest every factor
        if self.factor_updates == ALTERNATE and not any(isinstance(c, FactorTurns) for c in callbacks):
            callbacks.append(FactorTurns())
        return mutated
