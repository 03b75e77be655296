"""Scalable-DARTS (Wang, Xie, Chen, Tian, arXiv 1912.13256): factorized architecture parameters.

A large operation set written as a product of factors (activation x convolution) is searched
with one parameter vector per factor: A + O parameters and O convolution bodies per edge stand
for A x O candidates, where DARTS would need A x O parameters and run A x O operations. The
search loop is DARTS's (first order); the supernet cells differ
(:mod:`~nni_darts_ext.supermodules.factorized`), and the factors' vectors can be updated
jointly (every architecture step updates all) or in turn (:class:`FactorTurns`). A choice is
factored by its candidates' names, ``ACTIVATION+CONV``, in the YAML spaces' ``factors`` or in a
user's own NNI ``LayerChoice`` or ``Cell`` (:class:`ScalableDARTS`).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from nni.nas.evaluator.pytorch import Lightning

from ..errors import ConfigError, unknown_value
from ..spaces.factors import FACTORS
from ..registry import preset
from ..supermodules.factorized import FactorizedModule
from .search import DifferentiableSearch
from .slots import SlotFiller, Technique

JOINT, ALTERNATE = 'joint', 'alternate'
FACTOR_UPDATES = (JOINT, ALTERNATE)
NO_FACTORED_CHOICE = ('scalable needs a space with a factored choice: name the candidates of a LayerChoice (a dict) '
                      "or of a Cell's operation dict ACTIVATION+CONV, the full product (relu+conv3x3, tanh+conv3x3, "
                      "relu+conv5x5, tanh+conv5x5), or use a YAML space with factors, such as darts_small_factorized")


class FactorTurns(pl.Callback):
    """Each architecture step updates one factor's vectors, in turn: activation, conv, activation, ...

    Before the architecture optimizer steps, the resting factors' gradients are dropped
    (set to ``None``), so Adam leaves those parameters exactly as they are: no momentum drift,
    no weight decay. The group vectors (factored group vs unfactored candidates vs zero) are
    updated every step. Every factored choice takes part, cell edges and ``LayerChoice`` s alike.
    Every process counts the same steps, so data-parallel ranks agree.
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
        for module in pl_module.modules():
            if isinstance(module, FactorizedModule):
                for factor, parameters in module.factor_parameters().items():
                    if factor != training:
                        for parameter in parameters:
                            parameter.grad = None
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        return {'steps': self.steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = state_dict['steps']


class FactorizedCandidates(Technique):
    """Scalable-DARTS's technique: factorized cells in the cells slot, for choices whose candidates
    are named ``ACTIVATION+CONV``.

    Naming rule: a choice is factored when its candidate names ``A+B`` (split at the first ``+``)
    form the full product of the ``A`` s and the ``B`` s, e.g. ``relu+conv3x3``, ``tanh+conv3x3``,
    ``relu+conv5x5``, ``tanh+conv5x5`` for {relu, tanh} x {conv3x3, conv5x5}. Names without ``+``
    may stand beside the product as unfactored candidates (``skip``, ``max_pool``); an incomplete
    product is refused (:class:`~nni_darts_ext.errors.ConfigError` naming the missing
    combinations). The rule holds for the candidates of an NNI ``LayerChoice`` given a dict and
    for the operation dict of an NNI ``Cell``, and for the YAML spaces' ``factors``
    (``search_spaces/darts_factorized.yml``, ``darts_small_factorized.yml``), which name their
    candidates so. The two factors are called activation and conv, but any names work on a
    user's own modules: one architecture vector per factor (A and O entries) stands for the A x O
    combinations, each weighted by the product of its factors' softmaxes
    (:mod:`~nni_darts_ext.supermodules.factorized`).

    A factored ``Cell`` becomes a :class:`~nni_darts_ext.supermodules.factorized.FactorizedCell`
    (its convolution bodies shared across activations where the combinations are this package's
    operations, every combination run where they are the user's own modules); a factored
    ``LayerChoice`` becomes a :class:`~nni_darts_ext.supermodules.factorized.FactorizedLayer`
    (every combination run). Every other choice (plain names, a list ``LayerChoice``, an
    ``InputChoice``, ``Repeat``) is searched as DARTS searches it, by NNI's differentiable modules.
    Export picks each choice's best candidate (a combination's weight is the product of its
    factors'), in NNI's labels and candidate names, so the result freezes the original space.

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
    """
    name = 'scalable'

    def __init__(self, *, factor_updates: str = JOINT):
        if factor_updates not in FACTOR_UPDATES:
            raise unknown_value('factor_updates', factor_updates, FACTOR_UPDATES)
        self.factor_updates = factor_updates

    def fill(self, slots: SlotFiller) -> None:
        slots.design_cells(factorized=True)

    def check_supernet(self, supernet: Any) -> None:
        if not any(isinstance(module, FactorizedModule) for module in supernet.modules()):
            raise ConfigError(NO_FACTORED_CHOICE)

    def prepare_evaluator(self, evaluator: Lightning) -> None:
        callbacks = evaluator.trainer.callbacks
        # once per trainer: a second schedule out of step with the first would rest every factor
        if self.factor_updates == ALTERNATE and not any(isinstance(c, FactorTurns) for c in callbacks):
            callbacks.append(FactorTurns())


class ScalableDARTS(DifferentiableSearch):
    """DARTS with factorized architecture parameters: :class:`FactorizedCandidates`'s
    ``factor_updates`` and :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`'s options.

    Raises
    ------
    ConfigError
        From :meth:`mutate_model`, when the space has no factored choice.
    """
    techniques = (FactorizedCandidates,)


# DARTS's architecture optimizer; factors updated jointly (``alternate``: in turn, per step)
preset('scalable', 'Scalable-DARTS (Wang et al., arXiv 1912.13256): factorized parameters over activation x conv',
       ScalableDARTS)
