"""NNI 3.0's hub spaces, addressed as ``nni:NAME``.

Each takes 3-channel images (grey datasets are repeated to three channels for them). A
:class:`~.space.Size` reaches each space through the constructor arguments it has:

- the cell spaces (``DARTS``, ``ENAS``, ``NASNet``, ``AmoebaNet``, ``PNAS``): ``width`` and
  ``num_cells``; their classifier has 10 classes (NNI's ``cifar`` form);
- ``NasBench201`` and ``NasBench101``: the stem's channels and the cells per stack;
- ``ProxylessNAS`` and ``MobileNetV3Space``: ``width`` is the stem's channel count, every stage
  scaled with it; their depth is searched, so ``cells`` does not apply;
- ``AutoFormer``: ``width`` is the smallest embedding dimension searched (the others 1.125x and
  1.25x, as AutoFormer-Ti's 192/216/240), ``cells`` the deepest depth (and the two below it);
  the patches are a quarter of the image side;
- ``ShuffleNetSpace``: a fixed size.

The cell spaces also build the retraining's drop-path and auxiliary head (NNI's
``drop_path_prob`` and ``auxiliary_loss``); the others build neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nni.nas import hub
from nni.nas.nn.pytorch import ModelSpace

from ..errors import ConfigError, unknown_value
from .space import Regularization, Size, Space

HUB_PREFIX = 'nni:'
HUB_INPUT_CHANNELS = 3

Builder = Callable[..., ModelSpace]
"""``(size, num_classes, image_size) -> ModelSpace``; a regularized space's also takes a
:class:`~.space.Regularization`."""


@dataclass(frozen=True)
class HubSpace:
    """How one hub space is built, and its sizes.

    Attributes
    ----------
    build
        The space at a size, for a class count and an image side.
    search, evaluation
        The papers' search and evaluation sizes.
    smallest
        The smallest size the space accepts (what the tests search).
    sized
        Which of ``width`` and ``cells`` the space's constructor takes.
    ten_classes
        Whether the classifier is fixed at 10 classes.
    regularized
        Whether ``build`` takes a fourth argument, a :class:`~.space.Regularization`.
    """
    build: Builder
    search: Size
    evaluation: Size
    smallest: Size
    sized: tuple[str, ...] = ('width', 'cells')
    ten_classes: bool = False
    regularized: bool = False


def _cells(space: type[ModelSpace]) -> Builder:
    def build(size: Size, num_classes: int, image_size: int, regularization: Regularization) -> ModelSpace:
        model = space(width=size.width, num_cells=size.cells, dataset='cifar', drop_path_prob=regularization.drop_path)
        # NNI's NDS builds its auxiliary head only when frozen (it asserts so), and its freeze()
        # rebuilds the network from this attribute: the frozen network gets the head
        model.auxiliary_loss = regularization.auxiliary_head
        return model
    return build


def _nasbench201(size: Size, num_classes: int, image_size: int) -> ModelSpace:
    return hub.pytorch.NasBench201(stem_out_channels=size.width, num_modules_per_stack=size.cells,
                                   num_labels=num_classes)


def _nasbench101(size: Size, num_classes: int, image_size: int) -> ModelSpace:
    return hub.pytorch.NasBench101(stem_out_channels=size.width, num_modules_per_stack=size.cells,
                                   num_labels=num_classes)


def _proxylessnas(size: Size, num_classes: int, image_size: int) -> ModelSpace:
    return hub.pytorch.ProxylessNAS(num_labels=num_classes, width_mult=size.width / 32)


def _mobilenetv3(size: Size, num_classes: int, image_size: int) -> ModelSpace:
    base = (16, 16, 16, 32, 64, 128, 256, 512, 1024)
    return hub.pytorch.MobileNetV3Space(num_labels=num_classes, base_widths=tuple(w * size.width // 16 for w in base))


def _shufflenet(size: Size, num_classes: int, image_size: int) -> ModelSpace:
    return hub.pytorch.ShuffleNetSpace(num_labels=num_classes)


def _autoformer(size: Size, num_classes: int, image_size: int) -> ModelSpace:
    if image_size % 4:
        raise ConfigError(f'nni:AutoFormer cuts images into 4 x 4 patches; image_size {image_size} is not '
                          'divisible by 4')
    dimensions = tuple(round(size.width * scale) for scale in (1, 1.125, 1.25))
    depths = tuple(depth for depth in range(size.cells - 2, size.cells + 1) if depth >= 1)
    return hub.pytorch.AutoFormer(search_embed_dim=dimensions, search_depth=depths, img_size=image_size,
                                  patch_size=image_size // 4, num_labels=num_classes)


CELL_SEARCH, CELL_EVALUATION, CELL_SMALLEST = Size(16, 8), Size(36, 20), Size(4, 3)  # 3: one cell per stage


def _cell_space(space: type[ModelSpace]) -> HubSpace:
    return HubSpace(_cells(space), CELL_SEARCH, CELL_EVALUATION, CELL_SMALLEST, ten_classes=True, regularized=True)


HUB_SPACES: dict[str, HubSpace] = {
    'DARTS': _cell_space(hub.pytorch.DARTS),
    'ENAS': _cell_space(hub.pytorch.ENAS),
    'NASNet': _cell_space(hub.pytorch.NASNet),
    'AmoebaNet': _cell_space(hub.pytorch.AmoebaNet),
    'PNAS': _cell_space(hub.pytorch.PNAS),
    'NasBench201': HubSpace(_nasbench201, Size(16, 5), Size(16, 5), Size(4, 1)),
    'NasBench101': HubSpace(_nasbench101, Size(128, 3), Size(128, 3), Size(4, 1)),
    'ProxylessNAS': HubSpace(_proxylessnas, Size(32, 0), Size(32, 0), Size(8, 0), sized=('width',)),
    'MobileNetV3Space': HubSpace(_mobilenetv3, Size(16, 0), Size(16, 0), Size(4, 0), sized=('width',)),
    'ShuffleNetSpace': HubSpace(_shufflenet, Size(0, 0), Size(0, 0), Size(0, 0), sized=()),
    'AutoFormer': HubSpace(_autoformer, Size(192, 14), Size(192, 14), Size(16, 2)),
}
"""Every hub space of NNI 3.0, by the name after ``nni:``."""


def hub_space(name: str, num_classes: int, image_size: int) -> Space:
    """The hub space ``nni:NAME`` for a dataset of ``num_classes`` classes and ``image_size`` pixels a side."""
    key = name[len(HUB_PREFIX):]
    if key not in HUB_SPACES:
        raise unknown_value('NNI hub space', name, [HUB_PREFIX + k for k in HUB_SPACES])
    space = HUB_SPACES[key]
    if space.ten_classes and num_classes != 10:
        raise ConfigError(f'{name} has a 10-class classifier; the dataset has {num_classes} classes '
                          '(use a YAML space such as darts.yml instead)')

    def build(size: Size, affine: bool, regularization: Regularization = Regularization()) -> ModelSpace:
        # hub spaces keep their own batch norms: ``affine`` cannot change them
        if space.regularized:
            return space.build(size, num_classes, image_size, regularization)
        return space.build(size, num_classes, image_size)

    return Space(name=name, build=build, search=space.search, evaluation=space.evaluation,
                 input_channels=HUB_INPUT_CHANNELS, sized=space.sized, regularized=space.regularized)
