"""A non-editable install works on its own: the named spaces are package data, not files of the clone."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ('pyproject.toml', 'setup.cfg', 'README.md', 'nni_darts_ext', 'search_spaces')
"""What the build reads (and the top-level link to the spaces), copied so the build writes nothing into the clone."""
NAMED_SPACES = ['darts', 'darts_factorized', 'darts_small', 'darts_small_factorized']

INSTALLED_CHECK = f'''
import runpy
import sys
import torch
import nni_darts_ext
from nni_darts_ext import make_strategy
from nni_darts_ext.spaces import Size, available_spaces, load_space

print(nni_darts_ext.__file__)
assert [name for name in available_spaces() if ':' not in name] == {NAMED_SPACES!r}
for name in {NAMED_SPACES!r}:
    load_space(name, in_channels=1, num_classes=10, image_size=8)
space = load_space('darts_small', in_channels=1, num_classes=10, image_size=8)
model = make_strategy('darts').mutate_model(space.search_space(Size(width=4, cells=2)))
assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
own = load_space(sys.argv[1], in_channels=1, num_classes=10, image_size=8)
assert own.search == Size(width=2, cells=2)
sys.argv = ['nni_darts_ext.trial', '--help']
runpy.run_module('nni_darts_ext.trial', run_name='__main__', alter_sys=True)
'''
"""Run by the installed copy: every named space loads, darts_small's search model runs, a user's own file loads,
then ``python -m nni_darts_ext.trial --help`` (through runpy, as ``-m`` does, to import torch and NNI once)."""


def build_wheel(tmp_path: Path) -> Path:
    """The project's wheel, built without build isolation from a copy of the build's inputs."""
    source = tmp_path / 'source'
    source.mkdir()
    for name in BUILD_INPUTS:
        origin = REPOSITORY / name
        if origin.is_symlink() or origin.is_file():
            shutil.copy2(origin, source / name, follow_symlinks=False)
        else:
            shutil.copytree(origin, source / name, symlinks=True, ignore=shutil.ignore_patterns('__pycache__'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q',
                    '-w', str(tmp_path / 'wheels'), str(source)], check=True)
    [wheel] = (tmp_path / 'wheels').glob('*.whl')
    return wheel


def virtual_environment(tmp_path: Path) -> Path:
    """A bare virtual environment that sees the current one's packages (after its own), for the dependencies."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    own_packages = Path(subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                                       check=True, capture_output=True, text=True).stdout.strip())
    dependencies = [*site.getsitepackages(), sysconfig.get_path('purelib')]
    (own_packages / 'dependencies.pth').write_text('\n'.join(dict.fromkeys(dependencies)) + '\n')
    return own_packages


def test_wheel_ships_the_named_spaces_and_works_outside_the_clone(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(Path(name).stem for name in archive.namelist() if name.endswith('.yml'))
        samples = [name for name in archive.namelist() if name.endswith('.json')]
    assert shipped == NAMED_SPACES
    assert samples == ['nni_darts_ext/reference_samples/nasbench201_fashion_mnist_16.json']  # the report reads it

    own_packages = virtual_environment(tmp_path)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', '--target',
                    str(own_packages), str(wheel)], check=True)
    own_space = tmp_path / 'my.yml'
    own_space.write_text('operations: [skip_connect, sep_conv_3x3]\nnodes: 2\ncells: 2\nwidth: 2\n')

    python = own_packages.parents[2] / 'bin' / 'python'
    environment = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    checked = subprocess.run([python, '-c', INSTALLED_CHECK, str(own_space)], cwd=tmp_path, env=environment,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    installed_at, usage = checked.stdout.split('\n', 1)
    assert Path(installed_at).is_relative_to(own_packages)
    assert usage.startswith('usage: ') and '--space' in usage


IMPORT_EVERYTHING = '''
import importlib, pkgutil, warnings
import torch, pytorch_lightning, torchvision, matplotlib, tensorboard
with warnings.catch_warnings():  # NNI's own import-time warnings, and whatever filters it sets, left out
    warnings.simplefilter('ignore')
    import nni.nas.strategy
before = list(warnings.filters)
import nni_darts_ext
modules = [module.name for module in pkgutil.walk_packages(nni_darts_ext.__path__, 'nni_darts_ext.')]
for name in modules:
    importlib.import_module(name)
assert len(modules) > 30, modules
assert warnings.filters == before, [f for f in warnings.filters if f not in before]
'''


def test_importing_the_package_changes_no_warning_filter():
    subprocess.run([sys.executable, '-c', IMPORT_EVERYTHING], check=True, cwd=REPOSITORY)
