"""The checked checkpoint loader, the run-directory lock, the memory caps and the failed-write messages
(spikeforge.training: checked, checkpoint, rundir, memory, resume)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from spikeforge.train import TrainConfig
from spikeforge.train import load_checkpoint
from spikeforge.train import train
from spikeforge.training import checked
from spikeforge.training import checkpoint
from spikeforge.training import resume
from spikeforge.training import saved
from spikeforge.training.checked import AllocationBudget
from spikeforge.training.checked import BudgetExceeded
from spikeforge.training.checked import build_checked
from spikeforge.training.checked import check_state_dict
from spikeforge.training.checked import match_state_dict
from spikeforge.training.memory import activation_bytes
from spikeforge.training.memory import check_buildable
from spikeforge.training.memory import physical_memory
from spikeforge.training.rundir import RunDirBusyError
from spikeforge.training.rundir import RunLock

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(hidden=(8,), time_steps=2, epochs=1, batch_size=500, seed=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ck") / "run"
    train(tiny(), out)
    return out


# ---- the allocation budget -----------------------------------------------------------------------


def test_budget_counts_factories_and_refuses_before_allocating() -> None:
    budget = AllocationBudget(1000)
    with budget:
        nn.Linear(10, 20)  # 200 + 20 values
        assert budget.used == 220
        torch.zeros(3, 4)
        assert budget.used == 232
        with pytest.raises(BudgetExceeded):
            torch.empty(10**12)  # 4 TB: refused, so never allocated (this test would fail with an OOM otherwise)
        with pytest.raises(BudgetExceeded):
            torch.full((10**6,), 1.0)


def test_budget_edge_exactly_at_the_limit() -> None:
    with AllocationBudget(100):
        torch.empty(100)  # exactly the limit is allowed
        with pytest.raises(BudgetExceeded):
            torch.empty(1)


def test_a_config_declaring_a_larger_model_is_refused_before_building(run_dir: Path, tmp_path: Path) -> None:
    ck = torch.load(run_dir / "best.pt", weights_only=True)
    held = sum(v.numel() for v in ck["model"].values())
    ck["config"]["hidden"] = [20000, 20000]  # 400 million weights declared, about a hundred held
    bad = tmp_path / "huge.pt"
    torch.save(ck, bad)
    assert bad.stat().st_size < 10_000 and held < 1000
    with pytest.raises(ValueError, match=rf"declares a larger model .* the file holds {held}\b"):
        load_checkpoint(bad)


def test_build_checked_loads_exactly_the_weights_and_keeps_the_rng(run_dir: Path) -> None:
    model, _, _ = load_checkpoint(run_dir / "best.pt")
    state = torch.load(run_dir / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items()) and not model.training
    torch.manual_seed(5)
    a = torch.rand(3)
    torch.manual_seed(5)
    build_checked(lambda: nn.Linear(2, 3), {"weight": torch.ones(3, 2), "bias": torch.zeros(3)}, "x")
    assert torch.equal(torch.rand(3), a)  # building drew no numbers from the caller's generator


# ---- the state dict checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "state, match",
    [
        ([torch.zeros(2)], "not a dict of tensors"),
        ({1: torch.zeros(2)}, "not a named tensor"),
        ({"w": [0.0, 1.0]}, "is a list, not a named tensor"),
        ({"w": torch.tensor([0.0, float("nan")])}, "NaN or infinite"),
        ({"w": torch.tensor([float("inf")])}, "NaN or infinite"),
    ],
)
def test_check_state_dict_refuses(state: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_state_dict(state, "ckpt")


def test_check_state_dict_caps_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checked, "MAX_PARAMETERS", 10)
    assert check_state_dict({"w": torch.zeros(10)}, "ckpt")  # at the cap: fine
    with pytest.raises(ValueError, match="more than MAX_PARAMETERS = 10 values"):
        check_state_dict({"w": torch.zeros(10), "b": torch.zeros(1)}, "ckpt")


def test_match_state_dict_names_missing_unexpected_and_shape() -> None:
    model = nn.Linear(2, 3)
    match_state_dict(model, {"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}, "c")
    with pytest.raises(ValueError, match="bias is missing"):
        match_state_dict(model, {"weight": torch.zeros(3, 2)}, "c")
    with pytest.raises(ValueError, match="extra is not in the model"):
        match_state_dict(model, {"weight": torch.zeros(3, 2), "bias": torch.zeros(3), "extra": torch.zeros(1)}, "c")
    with pytest.raises(ValueError, match=r"weight has shape \[3, 5\], the config's model \[3, 2\]"):
        match_state_dict(model, {"weight": torch.zeros(3, 5), "bias": torch.zeros(3)}, "c")


# ---- file-level checks ---------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_torch_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data/0", b"\0" * (4 * 2**20))  # 4 MiB of zeros, a few KB on disk
    assert bomb.stat().st_size < 20_000
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", 2**20)
    monkeypatch.setattr(checkpoint.torch, "load", lambda *a, **k: pytest.fail("torch.load reached"))
    with pytest.raises(ValueError, match=r"unpacks to 4,194,304 bytes, more than MAX_CHECKPOINT_BYTES = 1,048,576"):
        load_checkpoint(bomb)


def test_a_file_over_the_size_cap_or_not_a_zip_is_refused(run_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    size = (run_dir / "best.pt").stat().st_size
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", size - 1)
    with pytest.raises(ValueError, match="more than MAX_CHECKPOINT_BYTES"):
        load_checkpoint(run_dir / "best.pt")
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", size)  # at the cap: loads
    load_checkpoint(run_dir / "best.pt")
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="not a PyTorch file"):
        load_checkpoint(legacy)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_checkpoint(tmp_path)


# ---- configs checked before anything is written -------------------------------------------------


def test_bad_neuron_kwargs_and_sizes_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    from spikeforge.data import dataset_info

    info = dataset_info("yinyang")
    with pytest.raises((TypeError, ValueError), match="bogus"):  # refused by the config itself
        tiny(neuron_kwargs={"bogus": 1})
    for config, match in (
        (tiny(hidden=(20000, 20000)), "MAX_PARAMETERS"),
        (tiny(time_steps=10**6, batch_size=10**6), "GiB of memory"),  # at MAX_TIME_STEPS (TrainConfig caps it)
        (tiny(batch_size=10**13), "GiB of memory"),
    ):
        with pytest.raises(ValueError, match=match):
            check_buildable(config, info)
        with pytest.raises(ValueError, match=match):
            train(config, tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_activation_bytes_is_a_lower_bound_of_the_input_alone() -> None:
    from spikeforge.data import dataset_info

    info = dataset_info("yinyang")
    config = tiny(time_steps=7)
    n_in = int(torch.tensor(info.input_shape).prod())
    assert activation_bytes(config, info, 3) == 4 * 7 * 3 * (n_in + 8 + info.num_classes)
    assert physical_memory() > 2**20


def test_input_shape_mismatch_is_named_before_a_backend_error(run_dir: Path) -> None:
    _, config, _ = load_checkpoint(run_dir / "best.pt")
    with pytest.raises(ValueError, match=r"samples have shape \[5\] but the model of dataset 'yinyang' takes \[4\]"):
        saved.check_input_shape(torch.zeros(2, 5), config, "evaluating")
    saved.check_input_shape(torch.zeros(2, 4), config, "evaluating")


# ---- the run-directory lock ----------------------------------------------------------------------

_HOLDER = """
import sys, time
from spikeforge.training.rundir import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_lock_is_exclusive_within_and_across_processes_and_freed_by_a_kill(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(RunDirBusyError, match="another training is running"):
        RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # released on exit of the block
    env = {**os.environ, "PYTHONPATH": SRC}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=env)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirBusyError) as info:
            RunLock(tmp_path).acquire()
        assert info.value.errno == errno.EWOULDBLOCK
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the kernel releases the lock
        holder.wait(timeout=60)
        assert holder.stdout is not None
        holder.stdout.close()
    with RunLock(tmp_path):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the lock leaves no file behind


def test_train_refuses_a_locked_directory_and_writes_nothing(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with RunLock(run):
        for kwargs in ({"overwrite": True}, {"resume": True}):
            with pytest.raises(RunDirBusyError, match="another training is running"):
                train(tiny(), run, **kwargs)
    assert [p.name for p in run.iterdir()] == ["notes.txt"]


# ---- failed writes -------------------------------------------------------------------------------


def test_a_full_disk_names_the_file_and_what_is_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = resume.atomic_save
    calls: list[str] = []

    def full_after_epoch_1(obj: dict[str, Any], path: Any) -> None:
        calls.append(Path(path).name)
        if obj["epoch"] >= 2 and Path(path).name == "checkpoint.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(obj, path)

    monkeypatch.setattr(resume, "atomic_save", full_after_epoch_1)
    run = tmp_path / "run"
    with pytest.raises(resume.RunWriteError) as info:
        train(tiny(epochs=3, lr=0.05), run)
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC and "[Errno" not in message
    assert str(run / "checkpoint.pt") in message and "no space left on device" in message
    assert "still holds epoch 1" in message and "--resume" in message
    assert load_checkpoint(run / "checkpoint.pt")[2]["epoch"] == 1
    monkeypatch.setattr(resume, "atomic_save", real)  # space freed: the advice works
    result = train(tiny(epochs=3, lr=0.05), run, resume=True)
    reference = train(tiny(epochs=3, lr=0.05), tmp_path / "reference")  # never interrupted
    times = ("train_time_s", "epoch_time_s")
    strip = [{k: v for k, v in h.items() if k not in times} for h in result.history]
    assert strip == [{k: v for k, v in h.items() if k not in times} for h in reference.history]
    assert result.best_epoch == reference.best_epoch
    ref_state = reference.model.state_dict()
    assert all(torch.equal(v, ref_state[k]) for k, v in result.model.state_dict().items())


def test_a_run_stopped_before_its_first_checkpoint_says_overwrite(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    for kwargs in ({}, {"resume": True}):
        with pytest.raises(FileExistsError, match=r"stopped before its first checkpoint.*--overwrite"):
            train(tiny(), run, **kwargs)


def test_training_on_data_of_the_wrong_shape_names_both_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spikeforge.training import loop

    x, y = torch.zeros(20, 5), torch.zeros(20, dtype=torch.long)
    monkeypatch.setattr(
        loop, "load_splits", lambda config, data_dir=None: {s: (x, y) for s in ("train", "validation", "test")}
    )
    with pytest.raises(ValueError, match=r"training: the data's samples have shape \[5\] but .* takes \[4\]"):
        train(tiny(), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_lock_falls_back_to_a_lock_file_where_directories_cannot_be_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl
    import stat

    real = fcntl.flock

    def no_directory_locks(fd: int, op: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd, op)

    monkeypatch.setattr(fcntl, "flock", no_directory_locks)
    with RunLock(tmp_path):
        assert (tmp_path / ".spikeforge.lock").is_file()
        with pytest.raises(RunDirBusyError):
            RunLock(tmp_path).acquire()
    from spikeforge.training.rundir import check_out_dir

    assert check_out_dir(tmp_path, resume=False, overwrite=False) is False  # the lock file is not a run file
    (tmp_path / ".spikeforge.lock").unlink()
    (tmp_path / ".spikeforge.lock").symlink_to(tmp_path / "victim")  # planted: never followed
    with pytest.raises(OSError, match="cannot lock the run directory"):
        RunLock(tmp_path).acquire()
    assert not (tmp_path / "victim").exists()


def _wrong_moment(ck: dict[str, Any]) -> None:
    state = ck["optimizer"]["state"][0]
    state["exp_avg"] = torch.zeros(3, 3)


@pytest.mark.parametrize(
    "damage",
    [
        _wrong_moment,
        lambda ck: ck.update(history=["x"]),
        lambda ck: ck["history"][0].pop("val_acc"),
        lambda ck: ck.update(rng="garbage"),
        lambda ck: ck.update(best_model={"w": torch.zeros(1)}),
        lambda ck: ck.update(best_epoch=7),
        lambda ck: ck.update(scheduler=[1]),
        lambda ck: ck.pop("optimizer"),
    ],
)
def test_a_damaged_checkpoint_is_not_resumed_and_the_advice_can_be_followed(damage: Any, run_dir: Path,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    import hashlib

    run = tmp_path / "run"
    run.mkdir()
    for f in run_dir.iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    damage(ck)
    torch.save(ck, run / "checkpoint.pt")
    before = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in run.iterdir()}
    with pytest.raises(ValueError, match=r"cannot resume .*--overwrite") as info:
        train(tiny(), run, resume=True)
    assert "\n" not in str(info.value)
    assert {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in run.iterdir()} == before
    assert train(tiny(), run, overwrite=True).history  # the advice works
