"""Thread choice of a training run (spikeforge.training.threads): the policy as a pure function, its inputs
(work size, available CPUs), the scoped setting, and its application by ``train`` and ``spikeforge train``."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from spikeforge import cli
from spikeforge.cli.train import train_config
from spikeforge.data import dataset_info
from spikeforge.train import Callback, TrainConfig, train
from spikeforge.training import threads as TH
from spikeforge.training.threads import MACS_PER_THREAD, ThreadChoice, choose_threads

BIG = 100 * MACS_PER_THREAD  # enough work for 100 threads


@pytest.fixture
def no_thread_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TH.THREAD_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def restore_torch_threads():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


# ---- the policy: (work, cpus, request, environment, torch's count) -> threads ------------------------------


def test_small_work_gets_one_thread() -> None:
    yinyang = 32 * 10 * (4 * 256 + 256 * 3)  # batch x T x MACs of the 4-256-3 MLP
    assert choose_threads(yinyang, cpus=16, current=16) == ThreadChoice(1, "work size", 1)
    assert choose_threads(0, cpus=1) == ThreadChoice(1, "work size", 1)


def test_threads_grow_with_work_up_to_cpus_and_torchs_count() -> None:
    assert choose_threads(3 * MACS_PER_THREAD, cpus=16, current=16).threads == 3
    assert choose_threads(3.9 * MACS_PER_THREAD, cpus=16, current=16).threads == 3  # whole threads only
    assert choose_threads(BIG, cpus=4, current=16) == ThreadChoice(4, "work size", 100)  # the CPUs cap it
    assert choose_threads(BIG, cpus=16, current=6) == ThreadChoice(6, "work size", 100)  # torch's count caps it
    assert choose_threads(BIG, cpus=16).threads == 16  # no torch count given: the CPUs only


def test_request_wins_over_environment_and_work_but_not_over_cpus() -> None:
    env = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "5"}
    assert choose_threads(BIG, cpus=8, requested=2, env=env, current=8) == ThreadChoice(2, "requested", 2)
    assert choose_threads(0, cpus=8, requested=6, current=1) == ThreadChoice(6, "requested", 6)  # above torch's
    capped = choose_threads(0, cpus=2, requested=8)
    assert capped == ThreadChoice(2, "requested", 8)
    assert capped.describe() == "2 (requested: 8, capped at 2)"


def test_environment_wins_over_work_size_and_is_capped_at_cpus() -> None:
    assert choose_threads(0, cpus=8, env={"OMP_NUM_THREADS": "3"}) == ThreadChoice(3, "OMP_NUM_THREADS", 3)
    assert choose_threads(BIG, cpus=8, env={"OMP_NUM_THREADS": "1"}, current=8).threads == 1
    assert choose_threads(0, cpus=2, env={"OMP_NUM_THREADS": "8"}) == ThreadChoice(2, "OMP_NUM_THREADS", 8)
    # torch's order: MKL_NUM_THREADS wins over OMP_NUM_THREADS; an OpenMP list gives its first entry
    both = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "2"}
    assert choose_threads(0, cpus=8, env=both) == ThreadChoice(2, "MKL_NUM_THREADS", 2)
    assert choose_threads(0, cpus=8, env={"OMP_NUM_THREADS": "4,2"}).threads == 4


@pytest.mark.parametrize("value", ["", "0", "-2", "abc", "1.5"])
def test_unusable_environment_values_are_ignored(value: str) -> None:
    choice = choose_threads(BIG, cpus=4, env={"OMP_NUM_THREADS": value}, current=4)
    assert choice == ThreadChoice(4, "work size", 100)


def test_callers_torch_count_is_a_ceiling_of_the_work_size_choice() -> None:
    # torch.set_num_threads(1) by the caller: a large model stays on one thread; a request still wins
    assert choose_threads(BIG, cpus=8, current=1) == ThreadChoice(1, "work size", 100)
    assert choose_threads(BIG, cpus=8, requested=4, current=1).threads == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"work": 0, "cpus": 0},
        {"work": 0, "cpus": True},
        {"work": 0, "cpus": 2.0},
        {"work": -1, "cpus": 2},
        {"work": float("nan"), "cpus": 2},
        {"work": 0, "cpus": 2, "requested": 0},
        {"work": 0, "cpus": 2, "current": 0},
    ],
)
def test_bad_inputs_raise(kwargs: dict) -> None:
    work = kwargs.pop("work")
    with pytest.raises(ValueError):
        choose_threads(work, **kwargs)


# ---- the inputs -----------------------------------------------------------------------------------------


def test_step_macs_counts_linear_and_conv_work_without_random_draws() -> None:
    state = torch.random.get_rng_state()
    assert TH.step_macs(TrainConfig(batch_size=32)) == 32 * 10 * (4 * 256 + 256 * 3)
    conv = TrainConfig(dataset="fashion_mnist", model="conv", hidden=(64,), batch_size=8, time_steps=2)
    per_sample = 28 * 28 * 16 * 1 * 9 + 14 * 14 * 32 * 16 * 9 + 7 * 7 * 32 * 64 + 64 * 10  # same padding, pool 2
    assert TH.step_macs(conv, dataset_info("fashion_mnist")) == 8 * 2 * per_sample
    assert torch.equal(state, torch.random.get_rng_state())


def test_available_cpus_respects_the_affinity_mask() -> None:
    cpus = TH.available_cpus()
    assert 1 <= cpus <= (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())


def test_threads_for_reads_the_config_and_environment(no_thread_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert TH.threads_for(TrainConfig()) == ThreadChoice(1, "work size", 1)
    assert TH.threads_for(TrainConfig(threads=1)) == ThreadChoice(1, "requested", 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert TH.threads_for(TrainConfig(dataset="fashion_mnist", model="conv")).source == "OMP_NUM_THREADS"


# ---- the scoped setting ---------------------------------------------------------------------------------


def test_use_threads_sets_and_restores_torch_and_numba_env(
    restore_torch_threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "numba", raising=False)  # as if Numba were not imported yet
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    with TH.use_threads(1):
        assert torch.get_num_threads() == 1
        assert os.environ["NUMBA_NUM_THREADS"] == "1"  # Numba's pool may not outnumber torch's threads
    assert torch.get_num_threads() == 2 and "NUMBA_NUM_THREADS" not in os.environ
    monkeypatch.setenv("NUMBA_NUM_THREADS", "8")  # the user's value, lowered inside and restored after
    with TH.use_threads(1):
        assert os.environ["NUMBA_NUM_THREADS"] == "1"
    assert os.environ["NUMBA_NUM_THREADS"] == "8"
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")  # already within torch's count: left alone
    with TH.use_threads(2):
        assert os.environ["NUMBA_NUM_THREADS"] == "1"
    with pytest.raises(ValueError):
        TH.use_threads(0).__enter__()


# ---- application: train() and spikeforge train ----------------------------------------------------------


class ThreadProbe(Callback):
    def __init__(self) -> None:
        self.seen: set[int] = set()

    def on_batch_end(self, epoch: int, batch_idx: int, n_batches: int, loss: float) -> None:
        self.seen.add(torch.get_num_threads())


def test_train_runs_on_the_chosen_count_and_restores_it(
    tmp_path: Path, no_thread_env: None, restore_torch_threads: int
) -> None:
    torch.set_num_threads(2)
    config = TrainConfig(hidden=(8,), time_steps=2, epochs=1, batch_size=500)
    probe = ThreadProbe()
    result = train(config, tmp_path / "run", callbacks=[probe])
    assert result.threads == ThreadChoice(1, "work size", 1) and probe.seen == {1}
    assert torch.get_num_threads() == 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]["threads"] == 1
    # the thread count may change on resumption (it is not part of the result's definition)
    again = train(dataclasses.replace(config, threads=2), tmp_path / "run", resume=True)
    assert again.threads.source == "requested" and again.best_epoch == result.best_epoch


def test_cli_threads_option_parses_into_the_config() -> None:
    parse = cli.build_parser().parse_args
    assert train_config(parse(["train"])).threads is None
    assert train_config(parse(["train", "--threads", "3"])).threads == 3
    assert train_config(parse(["train", "--threads", "none"])).threads is None


def test_cli_rejects_a_bad_thread_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--threads", "0", "--json"]) == 2
    out, err = capsys.readouterr()
    assert "threads" in json.loads(out)["error"] and "threads" in err


def test_cli_reports_and_applies_the_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_thread_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = ["--epochs", "1", "--hidden", "8", "--time-steps", "2", "--batch-size", "500", "--no-plots", "--quiet"]
    assert cli.main(["train", *tiny, "--out", str(tmp_path / "a"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["result"]
    assert (result["threads"], result["threads_source"], result["threads_wanted"]) == (1, "work size", 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert cli.main(["train", *tiny, "--out", str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    cpus = TH.available_cpus()
    line = next(line for line in text.splitlines() if "CPU threads" in line)
    assert line.endswith(f"{cpus} (OMP_NUM_THREADS: 64, capped at {cpus})" if cpus < 64 else "64 (OMP_NUM_THREADS)")


def test_threads_for_module_counts_the_ann_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch import nn

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    net.train()
    per_sample = 4 * 8 + 8 * 3
    samples = -(-3 * TH.MACS_PER_THREAD // per_sample)  # the fewest samples worth three threads
    choice = TH.threads_for_module(net, (4,), samples)
    assert choice.source == "work size" and choice.wanted == 3
    assert TH.threads_for_module(net, (4,), samples - 1).wanted == 2
    assert choice.threads == min(3, TH.available_cpus(), torch.get_num_threads())
    assert net.training  # the eval-mode pass restored the mode
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert TH.threads_for_module(net, (4,), samples) == TH.ThreadChoice(1, "OMP_NUM_THREADS", 1)
