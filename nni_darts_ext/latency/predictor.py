"""Latency predictors over the architecture encoding, both differentiable in it.

- :class:`LookupTable`: a fixed part plus, per edge, the probability-weighted latency of each
  operation measured in place (the zero operation costs nothing), calibrated on whole networks.
  Linear in the encoding.
- :class:`LatencyNetwork`: a small regression network on the flattened encoding, trained on
  measured architectures (LA-DARTS's predictor, Xu et al., arXiv 2001.06392), as a correction
  of the table.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


CALIBRATION_RCOND = 1e-3
"""Singular values of the calibration's design below this fraction of the largest count as zero:
samples whose table predictions are (nearly) alike fix the offset, not the scale."""


class LookupTable(nn.Module):
    """``offset + scale * (base_ms + sum over edges and operations of encoding * table)``.

    Parameters
    ----------
    base_ms
        The latency of everything outside the searched operations (stem, cell pre- and
        post-processing, classifier).
    table
        ``(edges, operations + 1)``: each operation's in-place latency on each edge (ms), summed
        over the cells that share the edge's label; the last column, the zero operation, is 0.

    ``offset`` and ``scale`` start at 0 and 1 (the table as measured); :meth:`calibrate` fits them
    to whole networks' latencies: timing operations one by one misses what lies between them
    (on the quick-start space on a CPU the raw table predicted 6 % low on average).
    """

    def __init__(self, base_ms: float, table: Tensor):
        super().__init__()
        self.register_buffer('base_ms', torch.tensor(float(base_ms)))
        self.register_buffer('table', table.detach().clone().float())
        self.register_buffer('offset_ms', torch.tensor(0.0))
        self.register_buffer('scale', torch.tensor(1.0))

    def forward(self, encoding: Tensor) -> Tensor:
        return self.offset_ms + self.scale * (self.base_ms + (encoding * self.table).sum(dim=(-1, -2)))

    def calibrate(self, encodings: Tensor, latencies_ms: Tensor) -> LookupTable:
        """Least-squares ``offset`` and ``scale`` on the relative error over measured networks: the
        smallest change to the table as measured where the networks do not fix both (a few samples
        of a small space can be alike; directions the samples fix to less than
        :data:`CALIBRATION_RCOND` of the best-fixed one are left alone). A scale that would not be
        positive, which would turn the table's order around and with it the latency gradient,
        leaves the scale at 1 and fits the offset alone."""
        with torch.no_grad():
            self.offset_ms.zero_()
            self.scale.fill_(1.0)
            raw = self(encodings)
            design = torch.stack([torch.ones_like(raw), raw], dim=1) / latencies_ms[:, None]
            # offset + (1 + change) * raw = latency, relative: design @ (offset, change) = 1 - raw / latency
            target = (1 - raw / latencies_ms).double()[:, None]
            solution = torch.linalg.lstsq(design.double(), target, rcond=CALIBRATION_RCOND,
                                          driver='gelsd').solution.flatten()
            if not 1.0 + float(solution[1]) > 0:
                solution = torch.linalg.lstsq(design[:, :1].double(), target, driver='gelsd').solution.flatten()
                solution = torch.cat([solution, solution.new_zeros(1)])
            self.offset_ms.fill_(float(solution[0]))
            self.scale.fill_(1.0 + float(solution[1]))
        return self


class LatencyNetwork(nn.Module):
    """The lookup table's prediction times ``1 + r(encoding)``, ``r`` a two-layer perceptron on the
    flattened encoding trained on measured networks.

    With a few dozen samples and hundreds of inputs, a network trained from nothing learns little
    more than their mean (measured on the quick-start space, 30 training samples: 10 % held-out
    error, against 11 % for predicting the mean); built on the table, it learns what an additive
    model misses.

    Parameters
    ----------
    lookup
        The table the network corrects (kept fixed).
    hidden
        Units of the hidden layer.
    """

    def __init__(self, lookup: LookupTable, hidden: int = 32):
        super().__init__()
        self.lookup = lookup
        edges, columns = lookup.table.shape
        self.residual = nn.Sequential(nn.Flatten(-2), nn.Linear(edges * columns, hidden), nn.ReLU(),
                                      nn.Linear(hidden, 1))

    def forward(self, encoding: Tensor) -> Tensor:
        return self.lookup(encoding) * (1 + self.residual(encoding).squeeze(-1))

    def fit(self, encodings: Tensor, latencies_ms: Tensor, steps: int = 1000, learning_rate: float = 1e-3,
            weight_decay: float = 1e-2, seed: int = 0) -> LatencyNetwork:
        """Full-batch Adam on the relative squared error, from no correction (last layer zero)."""
        generator = torch.Generator().manual_seed(seed)
        first, last = self.residual[1], self.residual[3]
        with torch.no_grad():
            first.weight.copy_(torch.randn(first.weight.shape, generator=generator) / first.in_features ** 0.5)
            first.bias.zero_()
            last.weight.zero_()
            last.bias.zero_()
        optimizer = torch.optim.AdamW(self.residual.parameters(), lr=learning_rate, weight_decay=weight_decay)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = ((self(encodings) - latencies_ms) / latencies_ms).pow(2).mean()
            loss.backward()
            optimizer.step()
        return self.eval()


def mean_absolute_percentage_error(predicted: Tensor, measured: Tensor) -> float:
    """``100 * mean(|predicted - measured| / measured)``."""
    return float(100 * ((predicted - measured).abs() / measured).mean())
