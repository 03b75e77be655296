"""Every NNI 3.0 hub space x every variant and the README's compositions, at the smallest size each accepts.

One search step on 8x8 images (3 channels, 10 classes): the exported architecture freezes on a fresh
copy of the space and runs; or the variant refuses the space with the one line :func:`refusal` names.
The README's table of hub spaces is this test's expectations (``python -m tests.test_hub_spaces``
prints it). The whole table takes about 15 minutes on two CPU cores; by default the suite checks
every refusal, every variant on ``NasBench201`` and ``darts`` on every space, but not the slowest
cells (:data:`SLOW`); ``NNI_DARTS_EXT_HUB_TABLE=all`` checks every cell. The trial searches spaces
of each kind by name and retrains what it found.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
import pytorch_lightning as pl
import torch
from nni.nas.evaluator.pytorch import Classification, DataLoader

from nni_darts_ext import ConfigError, make_strategy, trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.spaces.hub import HUB_SPACES, hub_space

from .conftest import COMPOSED, QUICK, cpu_settings
from .nnictl_helpers import REPOSITORY
from .user_spaces import search_once

IMAGE = (3, 8, 8)
VARIANTS = ('darts', 'darts2', 'stabilized', 'pcdarts', 'pdarts', 'ladarts', 'scalable', 'random', *COMPOSED)
CELL_SPACES = ('DARTS', 'ENAS', 'NASNet', 'AmoebaNet', 'PNAS', 'NasBench201')
PARAMETER_CHOICES = ('MobileNetV3Space', 'AutoFormer')
"""Spaces whose choices include widths, kernel sizes or depths inside modules (``nni.choice``)."""


def refusal(space: str, variant: str) -> str | None:
    """What ``variant`` says on ``space``, when it refuses it; the first technique to see the reason speaks."""
    techniques = set(variant.split('+'))
    if variant == 'random':
        return None
    if space == 'NasBench101':
        return "'cell/final' is a NasBench101CellConstraint: search this space with random"
    if 'scalable' in techniques:
        return 'scalable needs a space with a factored choice'
    if techniques & {'pdarts', 'pcdarts'} and space == 'AutoFormer':  # the supernet is checked once built
        return f"{'pdarts' if 'pdarts' in techniques else 'pcdarts'} found no choice among operations"
    if 'ladarts' in techniques and space in PARAMETER_CHOICES:
        return 'is a choice of another kind'
    if 'pcdarts' in techniques and space not in CELL_SPACES:
        return 'partial channels need candidates that keep the channel count'
    if techniques & {'darts2', 'stabilized'} and space == 'MobileNetV3Space':
        return 'set products to finite_difference'
    return None


WHOLE_TABLE = os.environ.get('NNI_DARTS_EXT_HUB_TABLE') == 'all'
EVERY_VARIANT_ON = ('NasBench201',)


SLOW = {('MobileNetV3Space', variant) for variant in ('darts', 'darts2', 'stabilized')}
"""Cells of 20 seconds or more (a step through MobileNetV3's mixed widths), left to the whole table."""


def checked_by_default(space: str, variant: str) -> bool:
    """The cells the suite checks without ``NNI_DARTS_EXT_HUB_TABLE=all``: the refusals (most take a
    second), every variant on a cell space, and darts everywhere; not :data:`SLOW`. (The LayerChoice
    spaces' own searches are in ``test_user_spaces.py``, on hand-written spaces of every kind.)"""
    if (space, variant) in SLOW:
        return False
    return refusal(space, variant) is not None or space in EVERY_VARIANT_ON or variant == 'darts'


def tiny_images() -> Classification:
    generator = torch.Generator().manual_seed(0)
    images = torch.utils.data.TensorDataset(torch.randn(16, *IMAGE, generator=generator),
                                            torch.randint(0, 10, (16,), generator=generator))
    return Classification(train_dataloaders=DataLoader(images, batch_size=8),
                          val_dataloaders=DataLoader(images, batch_size=8), num_classes=10, max_epochs=1,
                          limit_train_batches=1, limit_val_batches=1, accelerator='cpu', enable_progress_bar=False,
                          logger=False, enable_checkpointing=False, enable_model_summary=False)


def options(space: str, variant: str, tmp_path) -> dict:
    settings = cpu_settings(variant)
    if 'pdarts' in variant.split('+'):  # two one-step stages at the smallest depth, the second pruned
        cells = max(1, HUB_SPACES[space].smallest.cells)  # 1 where the space has no depth argument
        settings['stages'] = [[cells, None, 1, 0, 0.0], [cells, 2, 1, 0, 0.4]]
    if 'ladarts' in variant.split('+'):
        settings.update(latency_samples=4, latency_repeats=1, latency_warmup=0, latency_cache=tmp_path)
    settings.pop('space', None)  # scalable's CPU setting names its own YAML space
    return settings


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('space', HUB_SPACES)
def test_every_variant_on_every_hub_space(space, variant, tmp_path):
    if not (WHOLE_TABLE or checked_by_default(space, variant)):
        pytest.skip('a cell of the whole table: NNI_DARTS_EXT_HUB_TABLE=all checks it')
    hub = hub_space(f'nni:{space}', 10, IMAGE[-1])
    build = lambda: hub.search_space(HUB_SPACES[space].smallest)  # noqa: E731
    strategy = make_strategy(variant, **options(space, variant, tmp_path))
    expected = refusal(space, variant)
    if expected is None:
        search_once(strategy, build, tiny_images(), IMAGE)
    else:
        with pytest.raises(ConfigError, match=re.escape(expected)):
            search_once(strategy, build, tiny_images(), IMAGE)


@pytest.mark.parametrize('space', ['ENAS', 'NasBench201', 'NasBench101', 'ProxylessNAS', 'AutoFormer'])
def test_the_trial_searches_a_hub_space_by_name_and_retrains_what_it_found(space, tmp_path):
    variant = 'random' if space == 'NasBench101' else 'darts'
    sizes = {f'{phase}_{dimension}': getattr(HUB_SPACES[space].smallest, dimension)
             for phase in ('search', 'retrain') for dimension in HUB_SPACES[space].sized}
    config, settings = split_parameters({**QUICK, 'space': f'nni:{space}', 'variant': variant, 'train_subset': 32,
                                         'test_subset': 16, 'batch_size': 8, **sizes})
    pl.seed_everything(0, verbose=False)
    final = trial.run(config, settings, tmp_path)
    architecture = json.loads((tmp_path / 'arch.json').read_text())['architecture']
    assert set(architecture) <= set(hub_space(f'nni:{space}', 10, 8).search_space(
        HUB_SPACES[space].smallest).simplify())
    assert final['params'] > 0 and 0 <= final['default'] <= 1


def test_a_size_the_space_does_not_take_is_a_clear_error(tmp_path, capsys):
    assert trial.main(['--space', 'nni:ShuffleNetSpace', '--search-cells', '3', '--output-dir', str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ('error: search_cells does not apply to nni:ShuffleNetSpace, whose '
                                               'constructor takes no size; leave it unset')


REASONS = {
    "'cell/final' is a NasBench101CellConstraint: search this space with random": 'constraint',
    'scalable needs a space with a factored choice': 'no A+B names',
    'is a choice of another kind': 'width/kernel choices',
    'pdarts found no choice among operations': 'nothing to prune',
    'pcdarts found no choice among operations': 'no operation choice',
    'partial channels need candidates that keep the channel count': 'candidates change channels',
    'set products to finite_difference': 'no 2nd derivative',
}
"""A few words for each refusal, for the table."""


def markdown_table() -> str:
    """The README's table: one row per hub space, one column per variant (ok, or why it refuses)."""
    header = '| space | ' + ' | '.join(f'`{variant}`' for variant in VARIANTS) + ' |'
    rows = [header, '|---' * (len(VARIANTS) + 1) + '|']
    for space in HUB_SPACES:
        cells = [REASONS[refusal(space, variant)] if refusal(space, variant) else 'ok' for variant in VARIANTS]
        rows.append(f'| `nni:{space}` | ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def test_the_readmes_table_is_this_tests():
    readme = (REPOSITORY / 'README.md').read_text()
    table = readme.split('<!-- hub-table: python -m tests.test_hub_spaces -->\n')[1].split('\n<!-- /hub-table -->')[0]
    assert table == markdown_table()


if __name__ == '__main__':
    sys.stdout.write(markdown_table() + '\n')
