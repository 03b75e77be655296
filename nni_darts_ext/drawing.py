"""A PNG drawing of each found cell: inputs on the left, nodes in the middle, output on the right."""

from __future__ import annotations

from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)


def draw_cell(label: str, edges: list[tuple[int, int, str]], path: Path) -> None:
    """Draw one cell's edges ``(input node, node, operation)`` into ``path``."""
    nodes = sorted({node for _, node, _ in edges})
    positions = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for rank, node in enumerate(nodes):
        positions[node] = (1.0 + rank, 1.5 - 3.0 * rank / max(1, len(nodes) - 1))
    output = (2.0 + len(nodes), 0.0)
    names = {0: '$c_{k-2}$', 1: '$c_{k-1}$', **{n: str(n - 2) for n in nodes}}

    figure, axes = plt.subplots(figsize=(2.2 * (len(nodes) + 2), 4))
    for source, node, operation in edges:
        (x0, y0), (x1, y1) = positions[source], positions[node]
        axes.annotate('', xy=(x1, y1), xytext=(x0, y0),
                      arrowprops=dict(arrowstyle='->', color='tab:blue', shrinkA=14, shrinkB=14))
        axes.text((x0 + x1) / 2, (y0 + y1) / 2, operation, fontsize=8, ha='center', va='center',
                  bbox=dict(boxstyle='round', fc='white', ec='none', alpha=0.8))
    for node in nodes:
        axes.annotate('', xy=output, xytext=positions[node],
                      arrowprops=dict(arrowstyle='->', color='grey', shrinkA=14, shrinkB=14))
    for node, (x, y) in positions.items():
        axes.text(x, y, names[node], ha='center', va='center', fontsize=10,
                  bbox=dict(boxstyle='circle', fc='lightyellow' if node > 1 else 'lightgreen'))
    axes.text(*output, '$c_{k}$', ha='center', va='center', fontsize=10, bbox=dict(boxstyle='circle', fc='lightblue'))
    axes.set_title(f'{label} cell')
    axes.set_xlim(-0.5, output[0] + 0.5)
    axes.set_ylim(-2, 2)
    axes.axis('off')
    figure.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(figure)
