"""evaluate_tensors: accuracy and loss vs a plain reference loop, with and without spike counting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeforge.models import SNNClassifier
from spikeforge.models import build_conv
from spikeforge.training.evaluate import evaluate_tensors


def _model() -> SNNClassifier:
    torch.manual_seed(0)
    net = build_conv((1, 8, 8), (4, 6), (12,), 3)  # conv -> BN -> LIF -> MaxPool2d(2): the fused neuron + pool
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.normal_(m.weight, 0.0, 0.8)
    return SNNClassifier(net, time_steps=3, encoding="constant", decoding="max_membrane").eval()


def test_activity_off_gives_the_same_accuracy_and_loss_and_no_counts() -> None:
    model = _model()
    x, y = torch.rand(37, 1, 8, 8), torch.randint(0, 3, (37,))
    on = evaluate_tensors(model, x, y, batch_size=10, device=torch.device("cpu"))
    off = evaluate_tensors(model, x, y, batch_size=10, device=torch.device("cpu"), activity=False)
    with torch.no_grad():  # independent reference: one forward pass over everything, decoded by hand
        v = model.network(x.unsqueeze(0).repeat(3, 1, 1, 1, 1))[0]  # [T, B, 3]
        logits = v.max(dim=0).values
    assert on["accuracy"] == off["accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert on["loss"] == pytest.approx(off["loss"], rel=1e-6)
    assert on["loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert off["firing_rates"] == {} and off["spikes_per_sample"] is None and off["n"] == 37
    assert set(on["firing_rates"]) == {"layers.2", "layers.6", "layers.10"} and on["spikes_per_sample"] > 0
