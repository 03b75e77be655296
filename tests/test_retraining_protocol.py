"""The papers' CIFAR-10 retraining protocol: cutout, scheduled drop-path, the auxiliary head's loss.

Each mechanism is pinned on its own (tiny networks, one fixed batch or a few one-batch epochs),
then the trial is run once with all three to see that they reach the retraining and nothing else.
"""

from __future__ import annotations


import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from nni.nas.hub.pytorch.utils.nn import DropPath
from torch.utils.data import DataLoader, TensorDataset

from nni_darts_ext import trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.data import ImageTensorDataset, load_dataset
from nni_darts_ext.spaces import Regularization, Size, load_space
from nni_darts_ext.training import ClassifierModule, DropPathSchedule, count_parameters, make_trainer

SPACES = ('darts_small', 'nni:DARTS')
"""A YAML cell space and one of NNI's NDS hub spaces: both build drop-path and the auxiliary head."""

SIZES = {'darts_small': Size(4, 2), 'nni:DARTS': Size(4, 3)}
"""The smallest sizes with two reductions before the auxiliary head."""


def network(name: str, image_size: int, regularization: Regularization = Regularization(), seed: int = 0):
    """The retrained network of ``name`` at its tiny size (every operation a 3x3 separable
    convolution, every input the default), its weights drawn from ``seed``."""
    space = load_space(name, 1 if name == 'darts_small' else 3, 10, image_size)
    labels = space.search_space(SIZES[name]).simplify()
    found = {label: 'sep_conv_3x3' if '/op_' in label else mutable.default() for label, mutable in labels.items()}
    torch.manual_seed(seed)
    return space.evaluation_model(found, SIZES[name], regularization)


def digits_batch(channels: int, image_size: int, count: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_dataset('digits', train_subset=count, test_subset=count, image_size=image_size).with_channels(channels)
    return torch.stack([data.train[i][0] for i in range(count)]), data.train.labels.clone()


@pytest.mark.parametrize('name', SPACES)
def test_the_auxiliary_loss_enters_the_training_loss_and_nothing_else(name):
    model = network(name, 32, Regularization(auxiliary_head=True))
    images, labels = digits_batch(model.stem[0].in_channels, 32)
    module = ClassifierModule(auxiliary_weight=0.4)
    module.set_model(model)

    module.train()
    logits, auxiliary_logits = model(images)
    expected = F.cross_entropy(logits, labels) + 0.4 * F.cross_entropy(auxiliary_logits, labels)
    with pytest.warns(UserWarning, match='self.log'):  # outside a trainer, Lightning only warns
        assert torch.equal(module.training_step((images, labels), 0)['loss'], expected)

    model.eval()
    with torch.no_grad():
        evaluated = model(images)
    assert isinstance(evaluated, torch.Tensor) and evaluated.shape == (len(labels), 10)
    validated = make_trainer(1, 'cpu').validate(module, DataLoader(TensorDataset(images, labels),
                                                                   batch_size=len(labels)), verbose=False)[0]
    assert validated['val_loss'] == pytest.approx(F.cross_entropy(evaluated, labels).item(), rel=1e-6)
    assert validated['val_acc'] == pytest.approx((evaluated.argmax(dim=1) == labels).float().mean().item())
    # the reported size is the evaluated network's, as in DARTS
    assert count_parameters(model) == count_parameters(network(name, 32))
    assert count_parameters(model) < sum(p.numel() for p in model.parameters())


def test_drop_path_rises_linearly_from_zero_over_the_epochs():
    model = network('darts_small', 8, Regularization(drop_path=0.3))
    droppers = [m for m in model.modules() if isinstance(m, DropPath)]
    assert droppers
    seen: list[set[float]] = []

    class Recorder(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append({m.drop_prob for m in droppers})

    images, labels = digits_batch(1, 8, count=8)
    module = ClassifierModule()
    module.set_model(model)
    epochs = 4
    make_trainer(epochs, 'cpu', callbacks=[DropPathSchedule(0.3), Recorder()]).fit(
        module, DataLoader(TensorDataset(images, labels), batch_size=8))
    assert seen == [{0.3 * epoch / epochs} for epoch in range(epochs)]


@pytest.mark.parametrize('name', SPACES)
def test_drop_path_drops_only_in_training(name):
    plain = network(name, 32)
    dropping = network(name, 32, Regularization(drop_path=0.3))
    droppers = [m for m in dropping.modules() if isinstance(m, DropPath)]
    assert droppers and not any(isinstance(m, DropPath) for m in plain.modules())
    assert all(m.drop_prob == 0.3 for m in droppers)
    images, _ = digits_batch(plain.stem[0].in_channels, 32, count=4)

    plain.eval()
    dropping.eval()
    with torch.no_grad():
        first, second, reference = dropping(images), dropping(images), plain(images)
    assert torch.equal(first, second) and torch.equal(first, reference)
    dropping.train()
    plain.train()
    with torch.no_grad():
        assert not torch.allclose(dropping(images), plain(images))  # the same weights: only the drops differ


@pytest.mark.parametrize('length', [4, 5])
def test_cutout_zeroes_one_square_clipped_at_the_border(length):
    side, draws = 12, 400
    ones = ImageTensorDataset(torch.full((draws, 3, side, side), 255, dtype=torch.uint8), torch.zeros(draws),
                              statistics=([0.0] * 3, [1.0] * 3), cutout=length)
    torch.manual_seed(0)
    full = clipped = 0
    covered = torch.zeros(side, side, dtype=torch.bool)
    for index in range(draws):
        image = ones[index][0]
        zeroed = image == 0
        assert torch.equal(zeroed, zeroed[:1].expand_as(zeroed))  # the same square in every channel
        assert torch.equal(image[~zeroed], torch.ones(int((~zeroed).sum())))  # nothing else changed
        rows = zeroed[0].any(dim=1).nonzero().flatten()
        columns = zeroed[0].any(dim=0).nonzero().flatten()
        top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
        assert zeroed[0].sum() == (bottom - top) * (right - left)  # a rectangle
        assert zeroed[0, top:bottom, left:right].all()
        for start, stop in ((top, bottom), (left, right)):
            assert stop - start == length or (stop - start < length and (start == 0 or stop == side))
        full += bool(bottom - top == right - left == length)
        clipped += bool(bottom - top < length or right - left < length)
        covered |= zeroed[0]
    assert full and clipped and covered.all()


def test_cutout_reaches_only_the_retrainings_training_images():
    data = load_dataset('digits', train_subset=64, test_subset=32)
    config, _ = split_parameters({'retrain_cutout': 4, 'batch_size': 16})
    train_loader, test_loader = trial.retrain_loaders(data, config)
    torch.manual_seed(0)
    changed = 0
    for index in range(len(data.train)):
        cut, plain = train_loader.dataset[index][0], data.train[index][0]
        differs = cut != plain
        changed += bool(differs.any())
        assert (cut[differs] == 0).all()
        assert int(differs.any(dim=(0, 2)).sum()) <= 4 and int(differs.any(dim=(0, 1)).sum()) <= 4
    assert changed > len(data.train) // 2
    for index in range(len(data.test)):
        assert torch.equal(test_loader.dataset[index][0], data.test[index][0])
    evaluator = trial.search_evaluator(data, config, [])
    for loader in (evaluator.train_dataloaders, evaluator.val_dataloaders):
        subset = loader.dataset
        assert subset.dataset is data.train and data.train.cutout == 0
        assert all(torch.equal(subset[i][0], data.train[subset.indices[i]][0]) for i in range(len(subset)))


def test_the_trial_retrains_with_all_three_and_reports_the_evaluated_network(quick_parameters, tmp_path, monkeypatch):
    modules: list[ClassifierModule] = []

    class Recorded(ClassifierModule):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            modules.append(self)

    monkeypatch.setattr(trial, 'ClassifierModule', Recorded)
    parameters = {**quick_parameters, 'variant': 'random', 'train_subset': 64, 'test_subset': 32, 'image_size': 32,
                  'retrain_width': 4, 'retrain_cells': 2, 'retrain_epochs': 2, 'retrain_cutout': 16,
                  'retrain_drop_path': 0.2, 'retrain_auxiliary_weight': 0.4}
    config, options = split_parameters(parameters)
    final = trial.run(config, options, tmp_path)

    retrained = modules[-1]
    assert retrained.auxiliary_weight == 0.4 and hasattr(retrained.model, 'auxiliary_head')
    droppers = [m for m in retrained.model.modules() if isinstance(m, DropPath)]
    assert droppers and {m.drop_prob for m in droppers} == {0.2 * 1 / 2}  # the last epoch's rate
    assert final['params'] == count_parameters(retrained.model) < sum(p.numel() for p in retrained.model.parameters())
    assert 0 <= final['default'] <= 1


def tuned_trial(parameters: dict, output_dir, monkeypatch) -> int:
    monkeypatch.setattr(trial.nni, 'get_next_parameter', lambda: parameters)
    return trial.main(['--output-dir', str(output_dir)])


@pytest.mark.parametrize('parameters, message', [
    ({'retrain_cutout': -1}, 'retrain_cutout must be a non-negative number of pixels (0: off), got -1'),
    ({'retrain_cutout': 8}, 'retrain_cutout must be below the image size (8 pixels), got 8'),
    ({'retrain_cutout': 16, 'image_size': 16}, 'retrain_cutout must be below image_size (16 pixels), got 16'),
    ({'retrain_cutout': 2.5}, "retrain_cutout must be of type int, got 2.5 (float)"),
    ({'retrain_drop_path': 1.0}, 'retrain_drop_path must be in [0, 1) (0: off), got 1.0'),
    ({'retrain_drop_path': -0.1}, 'retrain_drop_path must be in [0, 1) (0: off), got -0.1'),
    ({'retrain_auxiliary_weight': -0.4}, 'retrain_auxiliary_weight must be non-negative (0: off), got -0.4'),
    ({'space': 'nni:NasBench201', 'retrain_drop_path': 0.2},
     'retrain_drop_path does not apply to nni:NasBench201, which builds no drop-path or auxiliary head (the YAML '
     'spaces and nni:DARTS, nni:ENAS, nni:NASNet, nni:AmoebaNet, nni:PNAS do); set it to 0'),
    ({'space': 'nni:ShuffleNetSpace', 'retrain_auxiliary_weight': 0.4},
     'retrain_auxiliary_weight does not apply to nni:ShuffleNetSpace'),
    ({'retrain_auxiliary_weight': 0.4},
     'retrain_auxiliary_weight: the auxiliary head reads an 8x8 to 10x10 feature map at 2/3 depth; 8-pixel images '
     "give 2x2 there (CIFAR's 32 give 8x8): set image_size accordingly, or retrain_auxiliary_weight to 0"),
])
def test_bad_protocol_values_are_one_error_line(parameters, message, tmp_path, monkeypatch, capsys):
    assert tuned_trial({'train_subset': 64, 'test_subset': 32, 'batch_size': 16, **parameters}, tmp_path / 'out', monkeypatch) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith('error: ' + message), errors
    assert not (tmp_path / 'out').exists()


def test_the_weight_optimizers_foreach_steps_equal_the_per_tensor_steps():
    model = network('nni:DARTS', 16)
    module = ClassifierModule()
    module.set_model(model)
    module.trainer = make_trainer(3, 'cpu')
    [optimizer], _ = module.configure_optimizers()
    twin = network('nni:DARTS', 16)
    per_tensor = torch.optim.SGD(twin.parameters(), lr=module.learning_rate, momentum=module.momentum,
                                 weight_decay=module.weight_decay, foreach=False)
    images, labels = digits_batch(3, 16)
    for _ in range(3):
        for net, stepped in ((model, optimizer), (twin, per_tensor)):
            stepped.zero_grad()
            F.cross_entropy(net(images), labels).backward()
            stepped.step()
    assert optimizer.defaults['foreach'] and len(list(model.parameters())) > 100
    for ours, reference in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, reference)
