"""Streaming (event-driven, batch 1) vs dense inference of a trained conv SNN checkpoint, and the engine's
whole-layer threshold ``conv_whole`` swept (issue 17: "faster per sample at batch 1 than the dense path").

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/streaming_conv.py CHECKPOINT --data-dir DIR

The checkpoint is a ``spikeforge train --model conv`` run (RESULTS.md names the command that made the one measured).
On a checkout older than ``conv_whole`` (run this file with ``PYTHONPATH`` set to that checkout's ``src``) it times
that checkout's one default pipeline.
For each ``conv_whole`` (None: the listed path only) the same first ``--samples`` test samples (encoded once, the
evaluation seed) run through a :class:`~spikeforge.events.pipeline.StreamingPipeline`; the dense model runs them at
batch 1 in the same process. Reported per sample: the median over ``--repeats`` passes of the mean wall time, the
neuron updates and spikes the engine executed, and the predictions that differ from the dense model's (must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from _timing import median_time

FRACTIONS: tuple[float | None, ...] = (None, 1.0, 0.5, 0.25, 0.1, 0.02)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--stages", action="store_true", help="also time each stage of the default pipeline")
    args = ap.parse_args()
    from spikeforge.data import get_dataset
    from spikeforge.events.pipeline import StreamingPipeline
    from spikeforge.training.evaluate import EVAL_SEED
    from spikeforge.training.saved import load_checkpoint

    torch.set_num_threads(1)
    model, config, _ = load_checkpoint(args.checkpoint)
    model.eval()
    ds = get_dataset(config.dataset, "test", data_dir=args.data_dir or config.data_dir)
    gen = torch.Generator().manual_seed(EVAL_SEED)
    with torch.no_grad():
        xs = [model.encode(ds.x[i : i + 1], generator=gen) for i in range(args.samples)]
        shape = tuple(int(s) for s in xs[0].shape[2:])
        dense_pred = [int(model(x, encoded=True).argmax(-1).reshape(-1)[0]) for x in xs]

        def dense() -> None:
            for x in xs:
                model(x, encoded=True)

        rows = [{"path": "dense", "ms_per_sample": 1e3 * median_time(dense, args.repeats) / len(xs)}]
        for frac in FRACTIONS:
            try:
                pipe = StreamingPipeline(model.network, shape, conv_whole=frac)
            except TypeError:  # a checkout before conv_whole (e.g. c66c74e): its one default pipeline
                if frac is not FRACTIONS[0]:
                    continue
                pipe, frac = StreamingPipeline(model.network, shape), "n/a (checkout default)"  # type: ignore[assignment]
            results = [pipe.run(x) for x in xs]
            preds = [int(model.decode(r.out).argmax(-1).reshape(-1)[0]) for r in results]

            def stream(pipe: StreamingPipeline = pipe) -> None:
                for x in xs:
                    pipe.run(x)

            rows.append({
                "path": f"streaming conv_whole={frac}",
                "ms_per_sample": 1e3 * median_time(stream, args.repeats) / len(xs),
                "neuron_updates": sum(r.total("neuron_updates") for r in results) / len(xs),
                "spikes": sum(r.total("spikes") for r in results) / len(xs),
                "disagreements": sum(a != b for a, b in zip(preds, dense_pred)),
            })  # fmt: skip
        if args.stages:
            rows.append({"path": "stages (default conv_whole)", "stages_ms": stage_times(model, shape, xs)})
    base = rows[0]["ms_per_sample"]
    for r in rows:
        if "stages_ms" in r:
            print("per stage (ms / sample): " + ", ".join(f"{k} {v:.3f}" for k, v in r["stages_ms"].items()))
            continue
        extra = "".join(f"  {k} {r[k]:.0f}" for k in ("neuron_updates", "spikes", "disagreements") if k in r)
        print(
            f"{r['path']:<30} {r['ms_per_sample']:7.3f} ms/sample  dense/this {base / r['ms_per_sample']:5.2f}x{extra}"
        )
    print(
        f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, samples {len(xs)}, repeats {args.repeats}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "argv": sys.argv[1:], "load": os.getloadavg()[0]}, f, indent=1)


def stage_times(model, shape, xs):  # type: ignore[no-untyped-def]
    """Mean wall time per sample of each stage of the default pipeline (engines, pools, readout), by wrapping them."""
    import time

    import spikeforge.events.pipeline as P

    pipe = P.StreamingPipeline(model.network, shape)
    acc: dict[str, float] = {}

    def timed(fn, key):  # type: ignore[no-untyped-def]
        def run(*a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            out = fn(*a, **k)
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t
            return out

        return run

    for st in pipe._stages:
        if isinstance(st, P._Engine):
            st.engine._run = timed(st.engine._run, f"engine {st.layers}")  # type: ignore[method-assign]
    saved = {n: getattr(P, n) for n in ("pool_spikes", "pool_csr", "readout_current", "_readout_trace")}
    try:
        for n, fn in saved.items():
            setattr(P, n, timed(fn, "pool" if n.startswith("pool") else "readout"))
        for x in xs:
            pipe.run(x)  # compiled already (the sweep ran)
        acc.clear()
        t = time.perf_counter()
        for x in xs:
            pipe.run(x)
        acc["whole run"] = time.perf_counter() - t
    finally:
        for n, fn in saved.items():
            setattr(P, n, fn)
    return {k: 1e3 * v / len(xs) for k, v in acc.items()}


if __name__ == "__main__":
    main()
