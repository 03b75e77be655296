"""The trial's TensorBoard event files, read back with TensorBoard's own reader."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import IMAGES, SCALARS, EventAccumulator

from nni_darts_ext import architecture, trial
from nni_darts_ext.board import PROBABILITY_SCALARS, TENSORBOARD_DIR, TrialBoard
from nni_darts_ext.config import split_parameters
from nni_darts_ext.epoch_reporter import EpochReporter
from nni_darts_ext.training import ClassifierModule, make_trainer

from .conftest import QUICK
from .nnictl_helpers import rest


def read_events(directory) -> EventAccumulator:
    events = EventAccumulator(str(directory), size_guidance={SCALARS: 0, IMAGES: 0})
    events.Reload()
    return events


def values(events: EventAccumulator, tag: str) -> dict[int, float]:
    return {event.step: event.value for event in events.Scalars(tag)}


@pytest.fixture(scope='module')
def tiny_trial(tmp_path_factory):
    """darts on darts_small, 2 search epochs and 1 retraining epoch on 128 images: its metrics.json and its events."""
    output_dir = tmp_path_factory.mktemp('trial')
    config, options = split_parameters({**QUICK, 'train_subset': 128, 'test_subset': 64, 'batch_size': 16,
                                        'search_epochs': 2})
    trial.run(config, options, output_dir)
    return output_dir, json.loads((output_dir / 'metrics.json').read_text()), read_events(output_dir / TENSORBOARD_DIR)


def test_every_number_of_every_epoch_record_is_a_scalar(tiny_trial):
    _, metrics, events = tiny_trial
    records = metrics['epochs']
    assert [(r['phase'], r['epoch']) for r in records] == [('search', 1), ('search', 2), ('retrain', 3)]
    tags = set(events.Tags()['scalars'])
    for name in ('train_loss', 'train_acc', 'val_loss', 'val_acc'):
        assert {f'search/{name}', f'retrain/{name}'} <= tags
    assert {'search/normalized_entropy', 'search/skip_connects', 'search/arch_entropy'} <= tags
    for phase in ('search', 'retrain'):
        for name, value in next(r for r in records if r['phase'] == phase).items():
            if isinstance(value, (int, float)) and name != 'epoch':
                tag = f"{phase}/{'val_acc' if name == 'default' else name}"
                expected = {r['epoch']: r[name] for r in records if r['phase'] == phase}
                assert values(events, tag) == pytest.approx(expected, rel=1e-6), tag
    for record in records:
        assert 0 <= record['train_acc'] <= 1 and record['train_loss'] > 0 and record['val_loss'] > 0
    for record in records[:2]:
        assert 0 < record['normalized_entropy'] <= 1


def test_each_choice_s_probabilities_sum_to_one_every_search_epoch(tiny_trial):
    _, metrics, events = tiny_trial
    choices: dict[str, dict[str, dict[int, float]]] = defaultdict(dict)
    for tag in events.Tags()['scalars']:
        if tag.startswith('prob/'):
            label, candidate = tag.removeprefix('prob/').rsplit('/', 1)
            choices[label][candidate] = values(events, tag)
    assert choices and all(len(candidates) == 7 for candidates in choices.values())  # darts_small's operations
    assert all(list(steps) == [1, 2] for candidates in choices.values() for steps in candidates.values())
    for step in (1, 2):
        probabilities = {label: {c: steps[step] for c, steps in candidates.items()} for label, candidates in choices.items()}
        for distribution in probabilities.values():
            assert sum(distribution.values()) == pytest.approx(1, abs=1e-5)
        record = metrics['epochs'][step - 1]
        assert architecture.normalized_entropy(probabilities) == pytest.approx(record['normalized_entropy'], abs=1e-6)
        assert architecture.mean_entropy(probabilities) == pytest.approx(record['arch_entropy'], abs=1e-5)
    # one chart per choice that draws its candidates together
    assert 'custom_scalars__config__' in events.Tags()['tensors']


def test_the_found_cells_drawings_are_images(tiny_trial):
    output_dir, metrics, events = tiny_trial
    found = json.loads((output_dir / 'arch.json').read_text())['architecture']
    cells = sorted(architecture.cell_edges(found))
    assert cells and sorted(events.Tags()['images']) == [f'cells/{cell}' for cell in cells]
    for cell in cells:
        [image] = events.Images(f'cells/{cell}')
        with Image.open(output_dir / f'{cell}.png') as drawing:
            assert (image.width, image.height) == drawing.size
        assert image.step == len(metrics['epochs'])


def test_big_spaces_get_one_probability_per_choice(tmp_path):
    candidates = PROBABILITY_SCALARS // 4 + 1
    probabilities = {f'choice{i}': {f'op{j}': (1 + j) / candidates ** 2 for j in range(candidates)} for i in range(4)}
    board = TrialBoard(tmp_path)
    board.epoch({'phase': 'search', 'epoch': 1, 'default': 0.5}, probabilities)
    board.close()
    events = read_events(tmp_path)
    assert sorted(events.Tags()['scalars']) == ['search/val_acc', *(f'top_prob/choice{i}' for i in range(4))]
    top = candidates / sum(range(1, candidates + 1))
    assert values(events, 'top_prob/choice0') == pytest.approx({1: top}, rel=1e-6)


def test_a_board_never_written_leaves_no_file(tmp_path):
    TrialBoard(tmp_path / TENSORBOARD_DIR).close()
    assert not (tmp_path / TENSORBOARD_DIR).exists()


def test_the_records_training_numbers_are_means_over_the_epoch():
    torch.manual_seed(0)
    images, labels = torch.randn(24, 4), torch.randint(0, 3, (24,))
    model = torch.nn.Linear(4, 3)
    module = ClassifierModule(learning_rate=0.0, min_learning_rate=0.0, weight_decay=0.0)  # the model stays put
    module.set_model(model)
    records = []
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)
    make_trainer(1, callbacks=[EpochReporter('retrain', records)]).fit(module, loader, loader)
    with torch.no_grad():
        batches = [(model(x), y) for x, y in loader]
        whole_loss = float(F.cross_entropy(model(images), labels))
    [record] = records
    assert record['train_loss'] == pytest.approx(sum(float(F.cross_entropy(z, y)) for z, y in batches) / 3, rel=1e-6)
    assert record['train_acc'] == pytest.approx(sum(float((z.argmax(1) == y).float().mean()) for z, y in batches) / 3)
    assert record['val_loss'] == pytest.approx(whole_loss, rel=1e-6)


def test_the_web_ui_s_button_path_links_to_the_events(tmp_path, monkeypatch):
    # NNI 3.0's local training service runs the trial here, and its TensorBoard button reads trials/TRIAL/output
    output_dir = tmp_path / 'experiment' / 'environments' / 'local-env' / 'trials' / 'Ab3dE'
    monkeypatch.setenv('NNI_OUTPUT_DIR', str(output_dir))
    monkeypatch.setenv('NNI_TRIAL_JOB_ID', 'Ab3dE')
    button = tmp_path / 'experiment' / 'trials' / 'Ab3dE' / 'output' / TENSORBOARD_DIR
    button.mkdir(parents=True)  # a press before the trial's first epoch leaves an empty folder
    board = TrialBoard(output_dir / TENSORBOARD_DIR)
    board.epoch({'phase': 'search', 'epoch': 1, 'default': 0.25})
    board.close()
    assert button.is_symlink() and button.resolve() == (output_dir / TENSORBOARD_DIR).resolve()
    assert values(read_events(button), 'search/val_acc') == {1: 0.25}


def test_the_web_ui_s_tensorboard_serves_each_trial_s_events(quickstart_run):
    """What the TensorBoard button does: NNI's REST API starts TensorBoard on the selected trials."""
    _, port = quickstart_run
    trials = {t['trialJobId']: json.loads(t['hyperParameters'][0])['parameters']['variant']
              for t in rest(port, 'trial-jobs')}
    task = post(port, 'tensorboard', {'trials': ','.join(trials)})
    try:
        tags = served_tags(port, task['id'], 90)
        for trial_id, variant in trials.items():
            [run] = [name for name in tags if trial_id in name]
            assert {'retrain/val_acc', 'retrain/train_loss'} <= set(tags[run])
            if variant == 'darts':
                assert {'search/val_loss', 'search/normalized_entropy', 'search/skip_connects'} <= set(tags[run])
                assert any(tag.startswith('prob/') for tag in tags[run])
    finally:
        urllib.request.urlopen(urllib.request.Request(f'http://127.0.0.1:{port}/api/v1/nni/tensorboard/{task["id"]}',
                                                      method='DELETE'), timeout=10).close()


def post(port: int, path: str, body: dict) -> dict:
    request = urllib.request.Request(f'http://127.0.0.1:{port}/api/v1/nni/{path}', data=json.dumps(body).encode(),
                                     headers={'Content-Type': 'application/json'}, method='POST')
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def served_tags(port: int, task_id: str, timeout_s: float) -> dict[str, dict]:
    """``{run: {tag: ...}}`` of the scalars that the TensorBoard NNI started serves, once every run has some."""
    deadline = time.monotonic() + timeout_s
    while True:
        task = rest(port, f'tensorboard/{task_id}')
        assert task['status'] not in ('ERROR', 'STOPPED'), task
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{task["port"]}/data/plugin/scalars/tags', timeout=10) as r:
                tags = json.load(r)
            if len(tags) == len(task['trialJobIdList']) and all(tags.values()):
                return tags
        except OSError:
            pass  # not listening yet
        assert time.monotonic() < deadline, f'TensorBoard of {task} served nothing in {timeout_s} s'
        time.sleep(2)


def test_normalized_entropy_is_the_mean_share_of_each_choice_s_largest_entropy():
    assert architecture.normalized_entropy({
        'uniform': {'a': 0.25, 'b': 0.25},  # renormalised (NNI's cells leave the zero operation out): 1
        'decided': {'a': 1.0, 'b': 0.0, 'c': 0.0},  # 0
        'three': {'a': 0.5, 'b': 0.25, 'c': 0.25},  # 1.5 ln 2 / ln 3
        'single': {'a': 1.0},  # nothing to decide: 0
    }) == pytest.approx((1 + 0 + 1.5 * math.log(2) / math.log(3) + 0) / 4)
    assert architecture.normalized_entropy({}) == 0.0
