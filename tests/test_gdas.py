"""GDAS's Gumbel-max weighing (Dong & Yang, CVPR 2019), pinned against its formulas, and in searches:
one candidate per mixed operation in the forward pass, the architecture read as ``softmax(alpha)``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nni_darts_ext import ConfigError, make_strategy
from nni_darts_ext.nni_internals import architecture_weights, normalization
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.strategies.gdas import GumbelMax
from nni_darts_ext.supermodules.darts_cell import DartsCell
from nni_darts_ext.supermodules.designed_cell import DesignedLayer
from nni_darts_ext.supermodules.partial_channel import partial_channel_node
from nni_darts_ext.supermodules.batched_edges import mix_edges
from nni_darts_ext.supermodules.weighing import reading_probabilities, sampled_weighings

from .user_spaces import DictChoices, search_once, tiny_evaluator

ALPHA = torch.tensor([0.3, -1.2, 0.9, 0.0, 2.1], dtype=torch.float64)


def test_a_draw_is_one_hot_and_differentiates_as_the_gumbel_softmax():
    weighing = GumbelMax(10.0, 0.1)
    weighing.tau = 0.7
    alpha = ALPHA.clone().requires_grad_()
    torch.manual_seed(3)
    drawn = weighing(alpha)
    torch.manual_seed(3)
    gumbel = -torch.empty_like(ALPHA).exponential_().log()
    assert torch.equal(drawn.detach(), nn.functional.one_hot((ALPHA.log_softmax(-1) + gumbel).argmax(), 5).double())
    signal = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    (gradient,) = torch.autograd.grad((drawn * signal).sum(), alpha)
    reference = alpha.detach().clone().requires_grad_()
    relaxed = ((reference.log_softmax(-1) + gumbel) / 0.7).softmax(-1)
    (expected,) = torch.autograd.grad((relaxed * signal).sum(), reference)
    torch.testing.assert_close(gradient, expected, rtol=0, atol=1e-15)


def test_draws_follow_the_softmax():
    weighing = GumbelMax(10.0, 0.1)
    torch.manual_seed(0)
    counts = torch.stack([weighing(ALPHA) for _ in range(20000)]).detach().mean(0)
    # 20,000 draws: the standard error of each frequency is below 0.0035
    torch.testing.assert_close(counts, ALPHA.softmax(-1), rtol=0, atol=0.015)


@pytest.mark.parametrize('epoch, epochs, tau', [(0, 10, 10.0), (9, 10, 0.1), (5, 11, 5.05), (0, 1, 10.0)])
def test_the_temperature_falls_linearly_from_tau_max_to_tau_min(epoch, epochs, tau):
    weighing = GumbelMax(10.0, 0.1)
    weighing.at_epoch(epoch, epochs)
    assert weighing.tau == pytest.approx(tau, abs=1e-12)


def test_reading_probabilities_weighs_by_the_softmax_and_then_samples_again():
    network = nn.Sequential(GumbelMax(10.0, 0.1), GumbelMax(1.0, 1.0))
    with reading_probabilities(network):
        assert all(torch.equal(weighing(ALPHA), ALPHA.softmax(-1)) for weighing in network)
    assert all(weighing.sampling for weighing in network) and sampled_weighings(network) == list(network)
    assert sorted(network[0](ALPHA).tolist()) == pytest.approx([0, 0, 0, 0, 1], abs=1e-15)


def calls(layer: nn.Module) -> dict[str, int]:
    """Per candidate of ``layer``, how many times it will have run."""
    counted = {str(name): 0 for name in layer.names}
    for name in layer.names:
        layer[name].register_forward_hook(lambda *_, name=str(name): counted.__setitem__(name, counted[name] + 1))
    return counted


@pytest.mark.parametrize('paths', ['drawn', 'all'])
def test_a_mixed_layer_runs_its_drawn_candidate_by_gdass_rule(paths):
    strategy = make_strategy('gdas', paths=paths)
    first, second = [m for m in strategy.mutate_model(DictChoices()).modules() if isinstance(m, DesignedLayer)]
    assert isinstance(normalization(first), GumbelMax) and normalization(first) is not normalization(second)
    first.eval()
    x = torch.randn(2, 4, 8, 8)
    signal = torch.randn(2, 4, 8, 8)
    counted = calls(first)
    for seed in range(4):
        torch.manual_seed(seed)
        output = first(x)
        (gradient,) = torch.autograd.grad((output * signal).sum(), architecture_weights(first))
        torch.manual_seed(seed)
        weights = normalization(first)(architecture_weights(first))
        chosen = int(weights.argmax())
        outputs = [first[name](x) for name in first.names]
        if paths == 'drawn':  # the drawn candidate's output, and the others' weights alone
            expected = weights[chosen] * outputs[chosen] + weights.sum() - weights[chosen]
        else:
            expected = sum(w * o for w, o in zip(weights, outputs))
        (reference,) = torch.autograd.grad((expected * signal).sum(), architecture_weights(first))
        torch.testing.assert_close(output, outputs[chosen], rtol=0, atol=1e-6)
        torch.testing.assert_close(gradient, reference, rtol=1e-5, atol=1e-7)
    # the reference ran every candidate each time; the layer its drawn one alone, or every one
    assert sum(counted.values()) == 4 * len(first.names) + (4 if paths == 'drawn' else 4 * len(first.names))


def test_a_node_whose_every_edge_draws_nothing_outputs_zeros_of_its_candidates_shape():
    reduce = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    weights = torch.tensor([0.0, 1.0], requires_grad=True)  # the convolution, then the zero operation: drawn
    mixed = mix_edges([torch.randn(2, 4, 8, 8)], [[reduce]], [weights], [1])
    assert mixed.shape == (2, 6, 4, 4) and not mixed.any()
    (gradient,) = torch.autograd.grad(mixed.sum(), weights)
    assert gradient.tolist() == [2 * 6 * 4 * 4, 0.0]


def test_partial_channels_mix_the_drawn_candidate_on_their_channels():
    strategy = make_strategy('pcdarts+gdas', k=2)
    first, _ = [m for m in strategy.mutate_model(DictChoices()).modules() if type(m) is DesignedLayer]
    first.eval()
    x = torch.randn(2, 4, 8, 8)
    counted = calls(first)
    torch.manual_seed(0)
    drawn = normalization(first)(architecture_weights(first)).detach()
    torch.manual_seed(0)
    output = first(x)
    assert sorted(counted.values()) == [0, 0, 1]
    expected = partial_channel_node([x], [[first[name] for name in first.names]], [drawn], None, 2, 'first',
                                    [int(drawn.argmax())])
    torch.testing.assert_close(output, expected, rtol=0, atol=0)


def test_a_cell_reads_the_softmax_and_its_nodes_weigh_by_draws():
    space = load_space('darts_small', 1, 10, 8)
    supernet = make_strategy('gdas').mutate_model(space.search_space(Size(8, 3)))
    cell = next(m for m in supernet.modules() if isinstance(m, DartsCell))
    edge = cell.edges[0]
    assert isinstance(normalization(cell), GumbelMax)
    assert cell.operation_weights(edge) == dict(zip(cell.edge_operations[edge],
                                                    architecture_weights(cell)[edge].softmax(-1).tolist()))
    for seed in range(3):  # one candidate per edge runs, every edge's vector gets a gradient
        torch.manual_seed(seed)
        supernet(torch.randn(2, 1, 8, 8)).sum().backward()
    assert all(vector.grad is not None and vector.grad.abs().sum() > 0 for vector in architecture_weights(cell).values())


def test_a_search_anneals_every_weighing_and_reports_softmax_probabilities():
    strategy = make_strategy('gdas', arc_learning_rate=0.1)
    supernet = strategy.mutate_model(DictChoices())
    search = strategy.mutate_evaluator(tiny_evaluator(max_epochs=3))
    search.evaluate(supernet)
    module = search.module
    assert [w.tau for w in sampled_weighings(supernet)] == [pytest.approx(0.1)] * 2  # the last of 3 epochs
    layers = [m for m in supernet.modules() if isinstance(m, DesignedLayer)]
    for layer in layers:
        expected = architecture_weights(layer).softmax(-1).tolist()
        assert list(module.export_probs()[layer.label].values()) == pytest.approx(expected, abs=1e-7)
        assert module.export()[layer.label] == layer.names[int(architecture_weights(layer).argmax())]
    assert all(w.sampling for w in sampled_weighings(supernet))


def test_every_option_has_the_papers_default_and_a_falling_temperature_is_required():
    strategy = make_strategy('gdas')
    assert (strategy.parts[0].weighing().tau_max, strategy.parts[0].weighing().tau_min) == (10.0, 0.1)
    assert strategy.arc_learning_rate == 3e-4 and strategy.arc_weight_decay == 1e-3
    with pytest.raises(ConfigError, match=r'^tau_min \(2\) exceeds tau_max \(1\); the temperature falls'):
        make_strategy('gdas', tau_max=1.0, tau_min=2.0)
    with pytest.raises(ConfigError, match="unknown paths 'one'; accepted: all, drawn"):
        make_strategy('gdas', paths='one')
    with pytest.raises(ConfigError, match='scalable and gdas cannot be composed: a sampled weighing draws one'):
        make_strategy('scalable+gdas')
    assert isinstance(search_once(make_strategy('pdarts+pcdarts+gdas', k=2, stages=[[1, None, 1, 0, 0.0]]),
                                  DictChoices), dict)
