"""``TrainConfig``: every choice of a training run, as a JSON-safe dataclass."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from spikeforge.training import choices as C
from spikeforge.training.augment import check_augment
from spikeforge.training.delay_options import check_model_kwargs
from spikeforge.transformer import check_transformer_options

__all__ = ["TrainConfig", "RESUMABLE_CHANGES", "LEGACY_VALUES"]

#: Fields that may differ between a run and its resumption (they do not change the result).
#: ``sparse`` keeps the parameters and their ``state_dict``; like ``device`` and ``threads`` it changes only the
#: float summation order (and a run saved before the field existed resumes with its default).
RESUMABLE_CHANGES = ("data_dir", "device", "num_workers", "threads", "sparse")
#: Fields whose default changed after runs were saved without them: a saved config that lacks the field had this
#: value (``select``: every run before session 8 reported its best-validation epoch).
LEGACY_VALUES: dict[str, Any] = {"select": "best_val"}


def _number(name: str, value: object, *, lo: float, lo_open: bool, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo)  # type: ignore[operator]
    if not ok:
        raise ValueError(f"TrainConfig.{name} must be a finite number {'>' if lo_open else '>='} {lo}, got {value!r}")


def _nonnegative_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"TrainConfig.{name} must be a non-negative int, got {value!r}")


def _differs(value: object, default: object) -> bool:
    """``value`` is not the field's default (a JSON list equals the tuple it stands for)."""
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        return tuple(value) != default
    return value != default


def _help(text: str) -> dict[str, str]:
    """Field metadata: ``--help`` text of the field's command-line option."""
    return {"help": text}


def _check_transformer(config: TrainConfig) -> None:
    """``transformer_kwargs`` only with a transformer model (and valid); transformer models run LIF neurons."""
    if config.model not in C.TRANSFORMER_MODELS:
        if config.transformer_kwargs is not None:
            raise ValueError(
                f"TrainConfig.transformer_kwargs is for models {C.TRANSFORMER_MODELS}, not {config.model!r}"
            )
        return
    check_transformer_options(config.transformer_kwargs)
    if config.neuron != "lif":
        raise ValueError(f"model {config.model!r} uses LIF neurons (neuron='lif'); tune them with neuron_kwargs")


@dataclass
class TrainConfig:
    """Configuration of :func:`spikeforge.train.train`. The defaults are the tuned Yin-Yang run.

    Batch 64 for 120 epochs (issue 20): as many optimiser steps as the earlier batch 32 for 60 epochs, at about
    1.17x its CPU time; with the last epoch's weights reported (``select="last"``), test accuracy over seeds 0-9
    (``benchmarks/seeds.py``) min / mean 98.1 / 98.7 %; numbers in ``benchmarks/RESULTS.md``.

    Every name is validated here, once, when the config is built (the one validator of each lives in
    :mod:`spikeforge.training.choices`); ``f.metadata["help"]`` of each field is its command-line help.

    Attributes:
        dataset: registered dataset name (:func:`spikeforge.data.list_datasets`).
        model: ``"mlp"``, ``"conv"``, or a transformer: ``"spikformer"``, ``"sdt"``, ``"vit-twin"``
            (:func:`spikeforge.models.list_models`).
        hidden: widths of the fully connected spiking layers.
        channels: conv block channels (``model="conv"`` only).
        neuron / surrogate: registered names (:func:`spikeforge.neurons.list_neurons`,
            :func:`spikeforge.surrogate.list_surrogates`).
        neuron_kwargs: neuron constructor arguments; None = :data:`spikeforge.models.DEFAULT_NEURON_KWARGS`.
        time_steps: simulation steps ``T`` per sample.
        encoding / encoding_kwargs: input code (``"constant"``, ``"rate"``, ``"latency"``) and its options.
        decoding: ``"max_membrane"``, ``"mean_membrane"`` or ``"spike_count"``.
        dropout: dropout after each hidden spiking layer.
        augment / augment_shift: random shifts (up to ``augment_shift`` pixels) and/or left-right flips of the
            training images (:mod:`spikeforge.training.augment`); validation and test data are never augmented.
        transformer_kwargs: size of the transformer models (:class:`spikeforge.transformer.TransformerOptions`).
        epochs: maximum number of epochs (the cosine schedule spans all of them).
        batch_size: global batch size (split across ranks under ``torchrun``).
        lr / weight_decay: AdamW learning rate (cosine-annealed per batch to 0) and decoupled weight decay.
        grad_clip: maximum global gradient 2-norm, or None for no clipping.
        patience: stop after this many epochs without a better validation accuracy; None = never.
        select: which weights the run reports, returns and saves as ``best.pt``: ``"last"`` (default), the last
            epoch's (the cosine schedule has annealed the learning rate to 0 by then), or ``"best_val"``, those of
            the first epoch with the highest validation accuracy (the only rule before session 8). On 10 training
            seeds scored on 10 000 fresh Yin-Yang samples that neither training nor the published splits use,
            ``"last"`` was at least as accurate as ``"best_val"`` on 8 of 10 seeds, with a higher minimum and mean
            (``benchmarks/seed_selection.py``, numbers in ``benchmarks/RESULTS.md``): a 1000-sample validation
            maximum is noisy and may pick an early epoch. A ``config.json`` written before the field existed loads
            as ``"best_val"``, the rule it was trained with.
        seed: seeds python, numpy, torch and the trainer's shuffling/encoding generator.
        data_dir: folder with dataset files (for datasets that need them).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (under ``torchrun`` each rank uses ``cuda:LOCAL_RANK``).
        num_workers: accepted for command-line compatibility; the trainer slices whole-split tensors and
            uses no DataLoader workers, so values other than 0 have no effect.
        threads: torch's CPU threads during training; None = chosen by
            :func:`spikeforge.training.threads.choose_threads`: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` if
            set, else from the work size (1 for small models), at most torch's present count. Never more than
            the CPUs available to the process.
        val_fraction: share of the training split held out for validation when the dataset has no
            ``"validation"`` split (fixed permutation, seed 0, independent of ``seed``).
        eval_batch_size: batch size of evaluation passes.
        model_kwargs: options of ``model="delay-mlp"`` / ``"srm"`` (:mod:`spikeforge.training.delay_options`).
        method: ``"surrogate"`` (BPTT of the discrete-time model with surrogate gradients, the default),
            ``"eventprop"`` or ``"ttfs"`` (exact gradients, :mod:`spikeforge.training.exact_method`): Yin-Yang only,
            latency-coded with bias spikes, one hidden layer, CPU. Of the other fields they use ``hidden``,
            ``epochs``, ``batch_size``, ``lr``, ``seed``, ``threads``, ``eval_batch_size``; the fields of
            :data:`~spikeforge.training.choices.EXACT_UNUSED` must keep their defaults (anything else is refused:
            they describe the discrete-time model). ``TrainConfig`` takes ``hidden``/``epochs``/``batch_size``/``lr``
            as given; :func:`spikeforge.training.exact_method.method_defaults` holds each recipe's values, which the
            command line uses for the options not given.
        sparse: ``"auto"`` (default): a Linear fed by spikes is a :class:`spikeforge.events.SparseLinear` (it takes
            the sparse or the dense path from the spike density it measures on every call) where
            :func:`spikeforge.training.sparse_layers.spike_linear` says it can pay, a plain ``nn.Linear`` elsewhere;
            ``"off"``: plain ``nn.Linear`` everywhere. Models ``mlp`` and ``conv`` only (the others ignore it).
            Same parameters and ``state_dict`` either way; results differ only by float summation order.

    ``epochs`` is at most :data:`~spikeforge.training.choices.MAX_EPOCHS` and ``time_steps`` at most
    :data:`~spikeforge.training.choices.MAX_TIME_STEPS` (a larger value is a typo that would run for days).
    """

    dataset: str = field(default="yinyang", metadata=_help("registered dataset name (spikeforge.data.list_datasets)"))
    model: str = field(
        default="mlp",
        metadata=_help(
            "model builder: mlp, conv, delay-mlp, srm, spikformer, sdt or vit-twin; language models spikegpt or rwkv "
            "(with --dataset austen)"
        ),
    )
    hidden: tuple[int, ...] = field(
        default=(256,), metadata=_help("widths of the fully connected spiking layers (at least one for 'mlp')")
    )
    channels: tuple[int, ...] = field(default=(16, 32), metadata=_help("conv block channels (model 'conv' only)"))
    neuron: str = field(default="lif", metadata=_help("spiking neuron of the hidden layers (a registered name)"))
    surrogate: str = field(default="fast_sigmoid", metadata=_help("surrogate gradient (a registered name)"))
    neuron_kwargs: dict[str, Any] | None = field(
        default=None, metadata=_help("neuron constructor arguments; None = the tuned defaults (tau_mem 5, raw input)")
    )
    time_steps: int = field(default=10, metadata=_help("simulation steps T per sample"))
    encoding: str = field(default="constant", metadata=_help("input code: constant, rate or latency"))
    encoding_kwargs: dict[str, Any] | None = field(
        default=None, metadata=_help('options of the encoder, e.g. {"gain": 0.5} for rate')
    )
    decoding: str = field(
        default="max_membrane", metadata=_help("readout decoding: max_membrane, mean_membrane or spike_count")
    )
    dropout: float = field(default=0.0, metadata=_help("dropout after each hidden spiking layer, in [0, 1)"))
    augment: str = field(
        default="none",
        metadata=_help("training-time augmentation of image samples: none, shift, flip or shift_flip"),
    )
    augment_shift: int = field(default=2, metadata=_help("largest random shift in pixels (augment shift/shift_flip)"))
    transformer_kwargs: dict[str, Any] | None = field(
        default=None,
        metadata=_help('size of the transformer models, e.g. {"dim": 64, "depth": 2, "heads": 4, "mlp_ratio": 4}'),
    )
    epochs: int = field(default=120, metadata=_help("maximum number of epochs (the cosine schedule spans all)"))
    batch_size: int = field(default=64, metadata=_help("global batch size (split across ranks under torchrun)"))
    lr: float = field(default=1e-2, metadata=_help("AdamW learning rate, cosine-annealed per batch to 0"))
    weight_decay: float = field(default=1e-4, metadata=_help("AdamW decoupled weight decay"))
    grad_clip: float | None = field(default=1.0, metadata=_help("maximum global gradient 2-norm; None = no clipping"))
    patience: int | None = field(
        default=None, metadata=_help("stop after this many epochs without a better validation accuracy; None = never")
    )
    select: str = field(
        default="last",
        metadata=_help(
            "weights the run reports and saves as best.pt: last (the last epoch's) or best_val (the epoch with "
            "the best validation accuracy)"
        ),
    )
    seed: int = field(default=0, metadata=_help("seeds python, numpy, torch and the trainer's generator"))
    data_dir: str | None = field(default=None, metadata=_help("folder with dataset files (datasets that need them)"))
    device: str = field(default="cpu", metadata=_help("torch device: cpu, cuda, cuda:N or mps"))
    num_workers: int = field(default=0, metadata=_help("accepted for compatibility; the trainer uses no workers"))
    threads: int | None = field(
        default=None,
        metadata=_help(
            "CPU threads of torch during training; none = OMP_NUM_THREADS if set, else chosen from the work "
            "size (1 for small models); never more than the CPUs available"
        ),
    )
    val_fraction: float = field(
        default=0.1, metadata=_help("share of the training split held out for validation, if the dataset has none")
    )
    eval_batch_size: int = field(default=1000, metadata=_help("batch size of evaluation passes"))
    model_kwargs: dict[str, Any] | None = field(
        default=None,
        metadata=_help(
            'options of model delay-mlp or srm, e.g. {"per": "axon", "max_delay": 20} (see '
            "spikeforge.training.delay_options); none = their defaults"
        ),
    )
    method: str = field(
        default="surrogate",
        metadata=_help(
            "training method: surrogate (BPTT with surrogate gradients), eventprop (exact EventProp gradients, "
            "Wunderlich & Pehle 2021) or ttfs (analytic time-to-first-spike, Goeltz et al. 2021). eventprop and "
            "ttfs: --dataset yinyang only (latency code with bias spikes), one --hidden width, CPU; the options of "
            "the discrete-time model (--neuron, --surrogate, --time-steps, --encoding, --decoding, --model, "
            "--channels, --dropout, --weight-decay, --grad-clip, --patience, --neuron-kwargs, --encoding-kwargs) "
            "are refused; --hidden, --epochs, --batch-size and --lr not given default to the method's recipe; "
            "no --resume"
        ),
    )
    steps_per_epoch: int | None = field(
        default=None,
        metadata=_help(
            "language models (--model spikegpt|rwkv) only: optimiser steps per epoch, i.e. between validations "
            "(none = 200); --time-steps is their context length in tokens, --hidden one width per block"
        ),
    )

    sparse: str = field(
        default="auto",
        metadata=_help(
            "spike-sparse Linear layers: auto (a SparseLinear where a spike-fed layer is wide enough to gain, "
            "see spikeforge.training.sparse_layers.spike_linear) or off (plain nn.Linear everywhere)"
        ),
    )

    def __post_init__(self) -> None:
        self.hidden = C.check_widths("TrainConfig.hidden", self.hidden, allow_empty=True)
        self.channels = C.check_widths("TrainConfig.channels", self.channels, allow_empty=True)
        C.check_dataset(self.dataset)
        C.check_model(self.model)
        C.check_hidden_neuron(self.neuron)
        C.check_surrogate(self.surrogate)
        C.check_encoding(self.encoding)
        C.check_decoding(self.decoding)
        C.check_device("TrainConfig.device", self.device)
        if self.model == "mlp" and not self.hidden:
            raise ValueError(
                "TrainConfig.hidden is empty, but hidden layers must spike and model 'mlp' has no other "
                "spiking layer; give at least one width, e.g. hidden=(128,)"
            )
        if self.model == "conv" and not self.channels:
            raise ValueError("TrainConfig.channels must not be empty for model 'conv'; give e.g. channels=(16, 32)")
        _check_transformer(self)
        for name in ("neuron_kwargs", "encoding_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"TrainConfig.{name} must be a dict or None, got {type(value).__name__}")
        C.check_encoding_options("TrainConfig.encoding_kwargs", self.encoding, self.encoding_kwargs)
        C.check_neuron_kwargs("TrainConfig.neuron_kwargs", self.neuron, self.neuron_kwargs)
        C.check_positive_int("TrainConfig.epochs", self.epochs, cap=C.MAX_EPOCHS, cap_name="MAX_EPOCHS")
        C.check_positive_int("TrainConfig.time_steps", self.time_steps, cap=C.MAX_TIME_STEPS, cap_name="MAX_TIME_STEPS")
        C.check_sequence_input(self.dataset, self.encoding, self.time_steps)
        for name in ("batch_size", "eval_batch_size"):
            C.check_positive_int(f"TrainConfig.{name}", getattr(self, name))
        C.check_positive_int("TrainConfig.patience", self.patience, allow_none=True)
        C.check_select("TrainConfig.select", self.select)
        C.check_positive_int("TrainConfig.threads", self.threads, allow_none=True)
        _number("lr", self.lr, lo=0.0, lo_open=True)
        _number("weight_decay", self.weight_decay, lo=0.0, lo_open=False)
        _number("grad_clip", self.grad_clip, lo=0.0, lo_open=True, allow_none=True)
        C.check_dropout("TrainConfig.dropout", self.dropout)
        check_augment(self.augment, self.augment_shift, self.dataset)
        if not isinstance(self.val_fraction, (int, float)) or not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"TrainConfig.val_fraction must lie in (0, 1), e.g. 0.1, got {self.val_fraction!r}")
        _nonnegative_int("seed", self.seed)
        _nonnegative_int("num_workers", self.num_workers)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            self.data_dir = str(self.data_dir)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        check_model_kwargs(self.model, self.model_kwargs, time_steps=self.time_steps, hidden=self.hidden,
                           neuron=self.neuron, surrogate=self.surrogate, defaults=defaults)  # fmt: skip
        changed = [name for name in C.EXACT_UNUSED if _differs(getattr(self, name), defaults[name])]
        C.check_method(self.method, dataset=self.dataset, changed=changed, hidden=self.hidden, device=self.device)
        lm_changed = [name for name in C.LM_UNUSED if _differs(getattr(self, name), defaults[name])]
        C.check_lm(self.model, self.dataset, changed=lm_changed, hidden=self.hidden, neuron=self.neuron)
        C.check_sparse("TrainConfig.sparse", self.sparse)
        C.check_positive_int("TrainConfig.steps_per_epoch", self.steps_per_epoch, allow_none=True)
        if self.steps_per_epoch is not None and self.model not in C.LM_MODELS:
            raise ValueError("TrainConfig.steps_per_epoch applies to --model spikegpt|rwkv only; drop it")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists); :meth:`from_dict` inverts it."""
        out = dataclasses.asdict(self)
        for name in ("hidden", "channels"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming the valid ones."""
        if not isinstance(data, dict):
            raise TypeError(f"TrainConfig.from_dict expects a dict, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid fields: {', '.join(names)}")
        values = {**LEGACY_VALUES, **data}  # a field saved configs lack: the value they were trained with
        for name in ("hidden", "channels"):
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values)
