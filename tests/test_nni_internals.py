"""What nni_darts_ext.nni_internals relies on in NNI 3.0, checked against the installed NNI."""

from __future__ import annotations

import inspect
import subprocess
import sys
from types import SimpleNamespace
from typing import Callable

import pytest
import torch
from nni.nas.evaluator.pytorch import Trainer
from nni.nas.nn.pytorch import LayerChoice, ModelSpace
from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
from nni.nas.oneshot.pytorch.supermodule.differentiable import (DifferentiableMixedCell, DifferentiableMixedInput,
                                                               DifferentiableMixedLayer, DifferentiableMixedRepeat)
from nni.nas.oneshot.pytorch.supermodule.sampling import PathSamplingCell
from nni.nas.strategy import Random
from torch import nn

from nni_darts_ext import make_strategy
from nni_darts_ext.nni_internals import (ALPHA, architecture_parameters, architecture_step_held_back, weighted_sum,
                                         architecture_weights, init_as_layer_choice, normalization, probabilities,
                                         probabilities_by_label, random_state, retraced, set_architecture_weights,
                                         traced_argument)

from .user_spaces import Repeated


def test_imported_after_a_one_shot_module_nni_strategy_would_be_a_stub():
    """Why the package imports nni.nas.strategy first: a fresh interpreter that imports NNI's one-shot
    module first gets a stub DARTS (when NNI fixes this, import_strategies can go)."""
    probe = ('import warnings; warnings.simplefilter("ignore")\n'
             'import nni.nas.oneshot.pytorch.strategy\n'
             'import nni.nas.strategy\n'
             'print(nni.nas.strategy.DARTS.__module__)')
    stub = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=True).stdout.strip()
    assert stub != 'nni.nas.oneshot.pytorch.strategy'
    import nni.nas.strategy
    assert nni.nas.strategy.DARTS.__module__ == 'nni.nas.oneshot.pytorch.strategy'


@pytest.mark.parametrize('module', [DifferentiableMixedLayer, DifferentiableMixedInput, DifferentiableMixedCell,
                                    DifferentiableMixedRepeat])
def test_nni_names_its_architecture_weights_alpha(module):
    assert module._arch_parameter_names == [ALPHA]


def in_a_space(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` inside a model space's constructor, where NNI lets a choice be made."""
    class Space(ModelSpace):
        def __init__(self):
            super().__init__()
            self.built = build()
    return Space().built


def test_a_mixed_layer_keeps_its_weights_and_softmax_where_the_adapter_reads_them():
    softmax = nn.Softmax(-1)
    weights = nn.Parameter(torch.tensor([0.0, 1.0, 2.0]))
    layer = in_a_space(lambda: DifferentiableMixedLayer([nn.Identity(), nn.ReLU(), nn.Tanh()], weights, softmax,
                                                        'choice'))
    assert architecture_weights(layer) is weights and normalization(layer) is softmax
    assert list(layer.arch_parameters()) == [weights]
    assert torch.equal(probabilities(layer), torch.softmax(weights, -1))
    x = torch.tensor([-1.0, 0.5])
    outputs = [candidate(x) for candidate in (nn.Identity(), nn.ReLU(), nn.Tanh())]
    torch.testing.assert_close(weighted_sum(layer, outputs, softmax(weights)), layer(x), rtol=0, atol=0)


def test_a_declared_parameter_is_trained_beside_alpha():
    @architecture_parameters('_extra')
    class WithExtra(DifferentiableMixedLayer):
        pass

    layer = in_a_space(lambda: WithExtra([nn.Identity(), nn.ReLU()], nn.Parameter(torch.zeros(2)), nn.Softmax(-1),
                                         'choice'))
    layer._extra = nn.Parameter(torch.ones(3))
    assert list(layer.arch_parameters()) == [architecture_weights(layer), layer._extra]


def test_a_layer_built_by_layer_choices_constructor_takes_weights_nni_then_reads():
    class Subset(DifferentiableMixedLayer):
        def __init__(self, candidates, label):
            init_as_layer_choice(self, candidates, label)
            set_architecture_weights(self, nn.Parameter(torch.zeros(len(self.names))), nn.Softmax(-1))

    assert DifferentiableMixedLayer.__mro__[1] is LayerChoice
    assert {'candidates', 'label'} <= set(inspect.signature(LayerChoice.__init__).parameters)
    layer = in_a_space(lambda: Subset({'a': nn.Identity(), 'b': nn.ReLU()}, 'choice'))
    assert layer.names == ['a', 'b'] and layer.label == 'choice'
    assert list(layer.arch_parameters()) == [architecture_weights(layer)]
    assert layer.export({}) == {'choice': 'a'}


def test_the_sampling_cells_constructor_takes_what_pruned_cells_give_it():
    assert list(inspect.signature(PathSamplingCell.__init__).parameters) == [
        'self', 'op_factory', 'num_nodes', 'num_ops_per_node', 'num_predecessors', 'preprocessor', 'postprocessor',
        'concat_dim', 'memo', 'mutate_kwargs', 'label']
    assert PathSamplingCell.__init__ is not DifferentiableMixedCell.__init__


def test_nnis_training_step_skips_its_architecture_step_below_warmup_epochs():
    source = inspect.getsource(DartsLightningModule.training_step)
    assert 'self.trainer.current_epoch >= self.warmup_epochs' in source
    module = SimpleNamespace(warmup_epochs=0, trainer=SimpleNamespace(current_epoch=3))
    with architecture_step_held_back(module):
        assert module.warmup_epochs == 4
    assert module.warmup_epochs == 0
    with pytest.raises(RuntimeError), architecture_step_held_back(module):
        raise RuntimeError
    assert module.warmup_epochs == 0


def test_nnis_trainer_is_rebuilt_from_its_traced_arguments():
    trainer = Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    assert traced_argument(trainer, 'max_epochs') == 3 and traced_argument(trainer, 'min_epochs') is None
    again = retraced(trainer, max_epochs=5)
    assert isinstance(again, trainer.trace_symbol) and again.max_epochs == 5 and not again.checkpoint_callbacks
    assert traced_argument(again, 'max_epochs') is None  # built by the class NNI traced: not traced itself


def test_nnis_random_strategy_draws_from_its_seeded_generator():
    first, second = random_state(Random(seed=7)), random_state(Random(seed=7))
    assert first.randint(1 << 30) == second.randint(1 << 30)



def test_a_mixed_repeat_keeps_one_vector_per_label():
    supernet = make_strategy('darts').mutate_model(Repeated())
    [depth] = [m for m in supernet.modules() if isinstance(m, DifferentiableMixedRepeat)]
    assert list(architecture_weights(depth)) == ['depth'] and list(depth.arch_parameters()) == [
        architecture_weights(depth)['depth']]
    with torch.no_grad():
        architecture_weights(depth)['depth'].copy_(torch.tensor([0.0, 1.0, 2.0]))
    assert torch.equal(probabilities_by_label(depth)['depth'], torch.softmax(torch.tensor([0.0, 1.0, 2.0]), -1))
