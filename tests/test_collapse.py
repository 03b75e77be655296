"""Collapse diagnostics: power iteration, the validation-Hessian eigenvalue, the early stops."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from nni_darts_ext import ConfigError, trial
from nni_darts_ext.collapse import CollapseMonitor, dominant_eigenvalue
from nni_darts_ext.config import split_parameters


@pytest.mark.parametrize('seed', range(5))
def test_power_iteration_finds_the_largest_eigenvalue(seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    spectrum = torch.linspace(-1.0, 3.0, 8, dtype=torch.float64)  # dominant: 3, well separated
    matrix = q @ torch.diag(spectrum) @ q.T
    # the operator sees the vector as two tensors, as it sees a network's architecture parameters
    like = [torch.zeros(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)]

    def product(vector: list[Tensor]) -> list[Tensor]:
        image = matrix @ torch.cat(vector)
        return [image[:3], image[3:]]

    estimate = dominant_eigenvalue(product, like, iterations=200, tolerance=1e-10)
    assert estimate == pytest.approx(float(torch.linalg.eigvalsh(matrix)[-1]), rel=1e-6)


class QuadraticSearch(nn.Module):
    """Stands in for a DARTS module: ``L_val = curvature / 2 * (3 a0^2 + a1^2)``, a running-mean buffer."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor([0.5, -0.5]), requires_grad=False)  # as during warm-up
        self.register_buffer('running_mean', torch.zeros(1))
        self.curvature = 1.0
        self.device = torch.device('cpu')

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def loss(self, batch, batch_idx: int) -> Tensor:
        self.running_mean += 1  # what a batch norm does on every forward pass
        return self.curvature / 2 * (3 * self.alpha[0] ** 2 + self.alpha[1] ** 2) + 0 * batch[0].sum()

    def transfer_batch_to_device(self, batch, device, index):
        return batch


def architecture_with_skips(count: int) -> dict:
    ops = ['skip_connect'] * count + ['sep_conv_3x3'] * (8 - count)
    arch = {}
    for i, op in enumerate(ops):
        node, slot = 2 + i // 2, i % 2
        arch[f'normal/op_{node}_{slot}'] = op
        arch[f'normal/input_{node}_{slot}'] = [slot]
    return arch


def fake_trainer(epoch: int = 0):
    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4, shuffle=True)
    return SimpleNamespace(val_dataloaders=data, current_epoch=epoch)


def test_eigenvalue_of_the_validation_hessian_and_the_rollback_stop():
    module, monitor = QuadraticSearch(), CollapseMonitor(eigenvalue_batches=2, early_stop='eigenvalue')
    curvatures = [1.0, 1.0, 1.1, 1.1, 1.2, 1.2, 1.3, 1.5]  # grows 1.5x over the last 5 epochs
    for epoch, curvature in enumerate(curvatures):
        module.curvature = curvature
        fields = monitor.observe(fake_trainer(epoch), module, architecture_with_skips(epoch % 3))
        assert fields['hessian_eigenvalue'] == pytest.approx(3 * curvature, rel=1e-3)
        if monitor.stopped:
            break
    assert epoch == 7 and 'grew 1.36x over 5 epochs' in monitor.stopped
    assert monitor.chosen == architecture_with_skips(2 % 3)  # the architecture of epoch 2
    assert not module.alpha.requires_grad and float(module.running_mean) == 0  # an observer only


def test_skip_connect_stop():
    monitor = CollapseMonitor(early_stop='skip_connects')
    assert monitor.observe(fake_trainer(), None, architecture_with_skips(1)) == {} and not monitor.stopped
    monitor.observe(fake_trainer(), None, architecture_with_skips(2))
    assert monitor.stopped.startswith('2 skip-connects in the normal cell') and monitor.chosen is None


def test_monitoring_is_off_by_default_and_stops_are_validated():
    monitor = CollapseMonitor()
    assert monitor.observe(fake_trainer(), None, architecture_with_skips(8)) == {} and not monitor.stopped
    with pytest.raises(ConfigError, match="unknown early_stop 'sometimes'; accepted: eigenvalue, none, skip_connects"):
        CollapseMonitor(early_stop='sometimes')
    with pytest.raises(ConfigError, match='set eigenvalue_batches to 1 or more'):
        split_parameters({'early_stop': 'eigenvalue'})


def test_trial_reports_the_eigenvalue_every_search_epoch(quick_parameters, tmp_path):
    config, options = split_parameters({**quick_parameters, 'train_subset': 128, 'eigenvalue_batches': 1,
                                        'early_stop': 'skip_connects'})
    final = trial.run(config, options, tmp_path)
    search = [r for r in trial.json.loads((tmp_path / 'metrics.json').read_text())['epochs'] if r['phase'] == 'search']
    assert len(search) == 1 and search[0]['hessian_eigenvalue'] != 0
    assert bool(final['stopped_early']) == (search[0]['skip_connects'] >= 2)
