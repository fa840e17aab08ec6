"""``TrainConfig``: every choice of a training run, as a JSON-safe dataclass."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["TrainConfig", "RESUMABLE_CHANGES"]

#: Fields that may differ between a run and its resumption (they do not change the result).
RESUMABLE_CHANGES = ("data_dir", "device", "num_workers")


def _pos_int(name: str, value: object, *, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"TrainConfig.{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def _number(name: str, value: object, *, lo: float, lo_open: bool, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo)  # type: ignore[operator]
    if not ok:
        raise ValueError(f"TrainConfig.{name} must be a finite number {'>' if lo_open else '>='} {lo}, got {value!r}")


def _widths(name: str, value: object) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"TrainConfig.{name} must be a tuple of positive ints, e.g. (128,), got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"TrainConfig.{name} must hold positive ints, got {value!r}")
    return tuple(value)


def _choice(name: str, value: object, valid: list[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(valid)}")


@dataclass
class TrainConfig:
    """Configuration of :func:`spikeforge.train.train`. The defaults are the tuned Yin-Yang run.

    Attributes:
        dataset: registered dataset name (:func:`spikeforge.data.list_datasets`).
        model: ``"mlp"`` or ``"conv"`` (:func:`spikeforge.models.list_models`).
        hidden: widths of the fully connected spiking layers.
        channels: conv block channels (``model="conv"`` only).
        neuron / surrogate: registered names (:func:`spikeforge.neurons.list_neurons`,
            :func:`spikeforge.surrogate.list_surrogates`).
        neuron_kwargs: neuron constructor arguments; None = :data:`spikeforge.models.DEFAULT_NEURON_KWARGS`.
        time_steps: simulation steps ``T`` per sample.
        encoding / encoding_kwargs: input code (``"constant"``, ``"rate"``, ``"latency"``) and its options.
        decoding: ``"max_membrane"``, ``"mean_membrane"`` or ``"spike_count"``.
        dropout: dropout after each hidden spiking layer.
        epochs: maximum number of epochs (the cosine schedule spans all of them).
        batch_size: global batch size (split across ranks under ``torchrun``).
        lr / weight_decay: AdamW learning rate (cosine-annealed per batch to 0) and decoupled weight decay.
        grad_clip: maximum global gradient 2-norm, or None for no clipping.
        patience: stop after this many epochs without a better validation accuracy; None = never.
        seed: seeds python, numpy, torch and the trainer's shuffling/encoding generator.
        data_dir: folder with dataset files (for datasets that need them).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (under ``torchrun`` each rank uses ``cuda:LOCAL_RANK``).
        num_workers: accepted for command-line compatibility; the trainer slices whole-split tensors and
            uses no DataLoader workers, so values other than 0 have no effect.
        val_fraction: share of the training split held out for validation when the dataset has no
            ``"validation"`` split (fixed permutation, seed 0, independent of ``seed``).
        eval_batch_size: batch size of evaluation passes.
    """

    dataset: str = "yinyang"
    model: str = "mlp"
    hidden: tuple[int, ...] = (256,)
    channels: tuple[int, ...] = (16, 32)
    neuron: str = "lif"
    surrogate: str = "fast_sigmoid"
    neuron_kwargs: dict[str, Any] | None = None
    time_steps: int = 10
    encoding: str = "constant"
    encoding_kwargs: dict[str, Any] | None = None
    decoding: str = "max_membrane"
    dropout: float = 0.0
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 1e-4
    grad_clip: float | None = 1.0
    patience: int | None = None
    seed: int = 0
    data_dir: str | None = None
    device: str = "cpu"
    num_workers: int = 0
    val_fraction: float = 0.1
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        from spikeforge.data import list_datasets
        from spikeforge.models import DECODINGS, ENCODINGS, list_models
        from spikeforge.neurons import list_neurons
        from spikeforge.surrogate import list_surrogates

        _choice("dataset", self.dataset, list_datasets())
        _choice("model", self.model, list_models())
        _choice("neuron", self.neuron, list_neurons())
        _choice("surrogate", self.surrogate, list_surrogates())
        _choice("encoding", self.encoding, list(ENCODINGS))
        _choice("decoding", self.decoding, list(DECODINGS))
        self.hidden = _widths("hidden", self.hidden)
        self.channels = _widths("channels", self.channels)
        for name in ("neuron_kwargs", "encoding_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"TrainConfig.{name} must be a dict or None, got {type(value).__name__}")
        for name in ("time_steps", "epochs", "batch_size", "eval_batch_size"):
            _pos_int(name, getattr(self, name))
        _pos_int("patience", self.patience, allow_none=True)
        _number("lr", self.lr, lo=0.0, lo_open=True)
        _number("weight_decay", self.weight_decay, lo=0.0, lo_open=False)
        _number("grad_clip", self.grad_clip, lo=0.0, lo_open=True, allow_none=True)
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TrainConfig.dropout must lie in [0, 1), got {self.dropout!r}")
        if not isinstance(self.val_fraction, (int, float)) or not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"TrainConfig.val_fraction must lie in (0, 1), got {self.val_fraction!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"TrainConfig.seed must be a non-negative int, got {self.seed!r}")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be a non-negative int, got {self.num_workers!r}")
        if not isinstance(self.device, str) or not self.device.split(":")[0] in ("cpu", "cuda", "mps"):
            raise ValueError(f"TrainConfig.device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            self.data_dir = str(self.data_dir)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists); :meth:`from_dict` inverts it."""
        out = dataclasses.asdict(self)
        for name in ("hidden", "channels"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming the valid ones."""
        if not isinstance(data, dict):
            raise TypeError(f"TrainConfig.from_dict expects a dict, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid fields: {', '.join(names)}")
        values = dict(data)
        for name in ("hidden", "channels"):
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values)
