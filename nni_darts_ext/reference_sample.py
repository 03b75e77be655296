"""Reference samples: architectures drawn uniformly from a space, each scored by one fixed protocol.

A found architecture's *percentile* is the share of the drawn architectures that score below it
under the same protocol, ties counting half: a random architecture gets 50 on average, one that
beats every draw gets 100. An architecture's score is its mean test accuracy over the sample's
seeds.

The protocol is a set of trial settings (:data:`PROTOCOL_SETTINGS`: data, space, evaluation size,
retraining). A trial whose settings agree with a sample's protocol retrains its found architecture
exactly as the sample's were retrained, so its accuracy at seed ``s`` is that architecture's entry
for ``s``. The package ships its samples in ``reference_samples/``;
``benchmarks/reference_sample.py`` draws, evaluates and extends them.

A file holds ``name``, ``protocol``, ``seeds``, ``machine``, ``draws`` (the architecture key of
each uniform draw, in draw order: draw ``i`` is
:class:`~nni_darts_ext.strategies.random_architecture.RandomArchitecture` with seed ``i``),
``architectures`` (key -> ``{architecture, accuracy: {seed: value}, seconds: {seed: value}}``,
for the draws and for found architectures added later, which never count as draws) and
``fidelity`` (the same architectures under a longer retraining, for the protocol's rank fidelity).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .files import write_atomically

SAMPLES_DIR = Path(__file__).parent / 'reference_samples'
"""The samples shipped with the package, one JSON file each, named after the sample."""

PROTOCOL_SETTINGS = ('dataset', 'image_size', 'space', 'train_subset', 'test_subset', 'retrain_width',
                     'retrain_cells', 'retrain_epochs', 'retrain_batch_size', 'retrain_learning_rate',
                     'min_learning_rate', 'momentum', 'weight_decay', 'retrain_gradient_clip', 'retrain_cutout',
                     'retrain_drop_path', 'retrain_auxiliary_weight')
"""The trial settings that decide how an architecture is retrained and tested."""


@dataclass
class ReferenceSample:
    """One sample: its protocol, its uniform draws and every architecture's accuracies (see the module)."""
    name: str
    protocol: dict[str, Any]
    seeds: list[int]
    machine: str = ''
    draws: list[str] = field(default_factory=list)
    architectures: dict[str, dict[str, Any]] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [name for name in PROTOCOL_SETTINGS if name not in self.protocol]
        if missing:
            raise ConfigError(f'reference sample {self.name!r}: its protocol lacks {", ".join(missing)}; '
                              f'a protocol sets every one of {", ".join(PROTOCOL_SETTINGS)}')

    @classmethod
    def load(cls, path: Path) -> ReferenceSample:
        """The sample in ``path``; a missing, unreadable or malformed file is a :class:`ConfigError` naming it."""
        try:
            content = json.loads(Path(path).read_text())
            return cls(**content)
        except (OSError, ValueError, TypeError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f'reference sample {path} cannot be read ({err}); rebuild it with '
                              'benchmarks/reference_sample.py') from None

    def save(self, path: Path) -> None:
        """Write the sample to ``path`` whole (an interrupted save keeps the previous file)."""
        write_atomically(Path(path), lambda partial: partial.write_text(json.dumps(asdict(self), indent=1) + '\n'))

    def matches(self, settings: Any) -> bool:
        """Whether ``settings`` (a trial config, or anything with the protocol's settings) retrain as this sample does."""
        return all(getattr(settings, name, None) == value for name, value in self.protocol.items())

    def accuracy(self, key: str, seed: int) -> float | None:
        """The test accuracy of architecture ``key`` retrained at ``seed``, if evaluated."""
        return self.architectures.get(key, {}).get('accuracy', {}).get(str(seed))

    def record(self, key: str, architecture: dict[str, Any], seed: int, accuracy: float, seconds: float) -> None:
        """Store the evaluation of ``architecture`` (named ``key``) at ``seed``."""
        entry = self.architectures.setdefault(key, {'architecture': architecture, 'accuracy': {}, 'seconds': {}})
        entry['accuracy'][str(seed)] = accuracy
        entry['seconds'][str(seed)] = round(seconds, 2)

    def score(self, key: str) -> float | None:
        """The mean accuracy of ``key`` over the sample's seeds; ``None`` until every seed is evaluated."""
        accuracies = [self.accuracy(key, seed) for seed in self.seeds]
        return None if None in accuracies else statistics.fmean(accuracies)

    def drawn_scores(self) -> list[float]:
        """The score of every draw evaluated at every seed, in draw order (a draw repeated counts again)."""
        scores = [self.score(key) for key in self.draws]
        return [score for score in scores if score is not None]

    def percentile(self, key: str) -> float | None:
        """Where ``key`` 's score stands among the draws' (0 to 100, ties half); ``None`` if it has no score."""
        score, drawn = self.score(key), self.drawn_scores()
        if score is None or not drawn:
            return None
        below = sum(s < score for s in drawn) + 0.5 * sum(s == score for s in drawn)
        return 100 * below / len(drawn)


def shipped_samples(directory: Path | None = None) -> list[ReferenceSample]:
    """Every sample in ``directory`` (:data:`SAMPLES_DIR`), by name (not a save's half-written files)."""
    return [ReferenceSample.load(path) for path in sorted(Path(directory or SAMPLES_DIR).glob('*.json'))
            if not path.name.startswith('.')]


def matching_sample(settings: Any, directory: Path | None = None) -> ReferenceSample | None:
    """The sample in ``directory`` (:data:`SAMPLES_DIR`) whose protocol ``settings`` follow, if one does."""
    return next((sample for sample in shipped_samples(directory) if sample.matches(settings)), None)
