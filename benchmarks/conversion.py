"""ANN-to-SNN conversion benchmark on Fashion-MNIST with a small VGG-style CNN.

Trains two ANNs of the same architecture (``spikeforge.training.ann.vgg_small``: [conv3x3 8, BN, act] x2,
avgpool, [conv3x3 16, BN, act] x2, avgpool, linear 64, act, linear 10):

* a ReLU ANN, converted with Rueckauer et al. (2017) 99.9-percentile normalisation (calibration on
  ``--calib`` training images) and evaluated at T = 32, 64, 128, 256;
* a QCFS ANN (Bu et al. 2022, ``--levels`` L), converted with threshold lambda and v(0) = lambda/2,
  evaluated at T = 1, 2, 4, 8, 16 twice: as the paper converts it (``qcfs``), and with the
  post-conversion offset correction of Li et al. (ICML 2021) computed at T = ``--correction-steps``
  on ``--calib`` training images (``qcfs+<correction>``; ``convert(..., correction=...)``). The
  default ``--correction membrane`` (one pass, per channel) was the best honest setting measured.

Each SNN accuracy is compared with its own ANN *on the same test samples*. Input: analog current
injection. Spikes per inference = hidden-layer spikes per test image over the T steps.

Run::

    .venv/bin/python benchmarks/conversion.py --json benchmarks/conversion.json --plot benchmarks/conversion.png
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from spikeforge.conversion import accuracy_over_time, convert
from spikeforge.data import get_dataset
from spikeforge.training.ann import ann_accuracy, train_ann, vgg_small


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--percentile", type=float, default=99.9)
    ap.add_argument("--calib", type=int, default=1000, help="training images used for calibration")
    ap.add_argument("--test-rueckauer", type=int, default=2000, help="test images for the Rueckauer SNN (T up to 256)")
    ap.add_argument("--test-qcfs", type=int, default=10000, help="test images for the QCFS SNN")
    ap.add_argument("--correction", choices=("bias", "membrane"), default="membrane")
    ap.add_argument("--correction-steps", dest="correction_steps", type=int, default=4)
    ap.add_argument("--correction-iterations", dest="correction_iterations", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="PNG prefix: writes <prefix>_<variant>.png per SNN")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train, test = get_dataset("fashion_mnist", "train"), get_dataset("fashion_mnist", "test")
    gen = torch.Generator().manual_seed(args.seed)
    result: dict = {"args": vars(args), "torch": torch.__version__, "machine": platform.machine(),
                    "train_size": train.x.shape[0], "test_size": test.x.shape[0]}

    for method in ("rueckauer", "qcfs"):
        t0 = time.perf_counter()
        torch.manual_seed(args.seed)
        ann = vgg_small((1, 28, 28), 10, activation="qcfs" if method == "qcfs" else "relu", levels=args.levels)
        train_ann(ann, train.x, train.y, epochs=args.epochs, generator=gen)
        t_train = time.perf_counter() - t0
        n = args.test_rueckauer if method == "rueckauer" else args.test_qcfs
        x, y = test.x[:n], test.y[:n]
        acc_full = ann_accuracy(ann, test.x, test.y)
        acc_sub = ann_accuracy(ann, x, y)
        calib = train.x[torch.randperm(train.x.shape[0], generator=gen)[: args.calib]]
        variants = [(method, "none")] if method == "rueckauer" else [(method, "none"), (f"qcfs+{args.correction}", args.correction)]
        for label, corr in variants:
            t1 = time.perf_counter()
            snn = convert(ann, calib if (method == "rueckauer" or corr != "none") else None, method=method,
                          percentile=args.percentile, correction=corr,
                          correction_steps=args.correction_steps if corr != "none" else None,
                          correction_iterations=args.correction_iterations)
            t_conv = time.perf_counter() - t1
            steps = (32, 64, 128, 256) if method == "rueckauer" else (1, 2, 4, 8, 16)
            curve = accuracy_over_time(snn, x, y, steps, ann_accuracy=acc_sub, label=f"{label} SNN", chunk=32)
            t_eval = time.perf_counter() - t1 - t_conv
            print(f"== {label}: ANN {100 * acc_full:.2f} % on all {test.x.shape[0]} test images; "
                  f"train {t_train:.0f} s, convert {t_conv:.0f} s, eval {t_eval:.0f} s")
            print(curve.table(), flush=True)
            if args.plot:
                curve.plot(f"{args.plot}_{label.replace('+', '_')}.png")
            result[label] = {"ann_accuracy_full_test": acc_full, "ann_accuracy_subset": acc_sub, "n_test": n,
                             "thresholds": snn.thresholds(), "curve": curve.to_dict(), "correction": corr,
                             "seconds_train": t_train, "seconds_convert": t_conv, "seconds_eval": t_eval}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
