"""Never a disconnected network: a found architecture whose output cannot depend on its input (every
path from input to output runs through a zero operation, as in 341 of NAS-Bench-201's cells) is
replaced by the most probable architecture that is connected.

Connected means the network computes something of its input: the gradient of its output with
respect to a random input is not zero everywhere. The test runs the network itself, so it holds on
every space, whatever its choices are called and however its cells are wired.

The paper's rule picks each choice's most probable candidate independently. Among the
architectures that differ from that one in the free choices (a ``LayerChoice`` or ``InputChoice``
whose candidates carry probabilities), the replacement is the one of highest joint probability,
the product of its candidates' probabilities: the rule's own order, continued past the
disconnected first pick. Cell edges derived by DARTS's top-k rule never pick the zero operation, so
a cell of theirs is always connected.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn

MAX_ALTERNATIVES = 1000
"""Architectures tried, in order of joint probability, before a trial gives up."""


class NoConnectedArchitecture(RuntimeError):
    """Neither the found architecture nor any of its :data:`MAX_ALTERNATIVES` most probable alternatives is connected."""


def is_connected(model: nn.Module, input_shape: tuple[int, ...]) -> bool:
    """Whether ``model`` 's output (in evaluation mode) depends on its input: the gradient of a random
    projection of the output with respect to two random images is not all zero."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, *input_shape, generator=generator, requires_grad=True)
    model.eval()
    output = model(images)
    projection = torch.randn(output.shape, generator=generator)
    (gradient,) = torch.autograd.grad((output * projection).sum(), images, allow_unused=True)
    return gradient is not None and bool(gradient.ne(0).any())


def by_joint_probability(found: Mapping[str, Any],
                         probabilities: Mapping[str, Mapping[Any, float]]) -> Iterator[dict[str, Any]]:
    """``found`` 's free choices (labels whose value is among their probabilities' candidates) set in
    every combination, most probable first; the other choices as ``found`` has them."""
    free = [label for label, value in found.items()
            if isinstance(probabilities.get(label), Mapping) and value in probabilities[label]]
    ranked = [sorted(probabilities[label].items(), key=lambda item: -item[1]) for label in free]
    costs = [[-math.log(p) if p > 0 else math.inf for _, p in candidates] for candidates in ranked]
    start = (0,) * len(free)
    heap, seen = [(sum(c[0] for c in costs), start)], {start}
    while heap:
        cost, indices = heapq.heappop(heap)
        if math.isinf(cost):
            return
        yield {**found, **{label: ranked[i][index][0] for i, (label, index) in enumerate(zip(free, indices))}}
        for i, index in enumerate(indices):
            if index + 1 < len(ranked[i]):
                successor = indices[:i] + (index + 1,) + indices[i + 1:]
                if successor not in seen:
                    seen.add(successor)
                    heapq.heappush(heap, (cost - costs[i][index] + costs[i][index + 1], successor))


def first_connected(candidates: Iterable[dict[str, Any]], connected: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first of ``candidates`` (a found architecture, then its alternatives in the rule's order, or a
    random strategy's successive draws) that is ``connected``, among the first :data:`MAX_ALTERNATIVES`."""
    for candidate in itertools.islice(candidates, MAX_ALTERNATIVES):
        if connected(candidate):
            return candidate
    raise NoConnectedArchitecture(
        f'no path leads from input to output in the found architecture, nor in the next {MAX_ALTERNATIVES - 1} '
        'in the derivation rule\'s order; search longer, or on a space whose choices are not all zero operations')
