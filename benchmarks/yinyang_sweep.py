"""Yin-Yang default-config variants over seeds 0-2, printing validation and test accuracy.

    .venv/bin/python benchmarks/yinyang_sweep.py default hidden256 epochs80
"""
import sys, json, tempfile, torch
torch.set_num_threads(2)
from spikeforge.train import TrainConfig, train
variants = {"default": dict(), "epochs80": dict(epochs=80), "hidden256": dict(hidden=(256,)), "T16": dict(time_steps=16)}
for name in sys.argv[1:]:
    accs = []
    for seed in (0, 1, 2):
        with tempfile.TemporaryDirectory() as d:
            r = train(TrainConfig(seed=seed, **variants[name]), d + "/run")
            accs.append((r.val_acc, r.test_acc))
    print(name, "val", [round(v * 100, 2) for v, _ in accs], "test", [round(t * 100, 2) for _, t in accs], flush=True)
