r"""Ready-made spiking classifiers built from the core layers, and the classifier wrapper.

A classifier is three parts, each replaceable by hand:

1. **encoding** ``x [B, ...] -> x_seq [T, B, ...]`` (:mod:`spikeforge.encoding`: ``"constant"`` current
   injection, ``"rate"`` Bernoulli spikes, ``"latency"`` time-to-first-spike);
2. **network**: an :class:`~spikeforge.layers.SNNSequential` of stateless layers (run once on
   ``[T*B, ...]``) and neuron layers (run through the one time loop), ending in a readout;
3. **decoding** ``out_seq [T, B, C] -> logits [B, C]``:

   * ``"max_membrane"``: :math:`\text{logit}_c = \max_t V_c[t]` of a non-spiking :class:`~spikeforge.neurons.LI`
     readout (max-over-time membrane cross-entropy, Cramer et al. 2020); ``"mean_membrane"``: the mean over t;
   * ``"spike_count"``: :math:`\text{logit}_c = \sum_t z_c[t]` of a *spiking* readout layer.

Composition by hand is the same thing the builders do::

    net = SNNSequential(nn.Linear(4, 128), LIF(5.0, input_scaling="none"),
                        nn.Linear(128, 3), LI(5.0, input_scaling="none"))
    model = SNNClassifier(net, time_steps=10, encoding="constant", decoding="max_membrane")
    logits = model(x)                       # x [B, 4] -> [B, 3]
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from torch import nn

from spikeforge.layers import SNNSequential
from spikeforge.neurons import LI
from spikeforge.neurons import NEURON_REGISTRY
from spikeforge.neurons import Neuron
from spikeforge.neurons import get_neuron
from spikeforge.training import delay_models as DM
from spikeforge.training.choices import DECODERS
from spikeforge.training.choices import ENCODERS
from spikeforge.training.choices import MODELS
from spikeforge.training.choices import check_dropout
from spikeforge.training.choices import check_hidden_neuron
from spikeforge.training.choices import check_model
from spikeforge.training.choices import check_positive_int
from spikeforge.training.choices import check_readout
from spikeforge.training.choices import check_sparse
from spikeforge.training.choices import check_surrogate
from spikeforge.training.choices import check_widths
from spikeforge.training.classifier import SNNClassifier
from spikeforge.training.config import TrainConfig
from spikeforge.training.sparse_layers import spike_linear
from spikeforge.training.transformer_models import TRANSFORMER_BUILDERS

# The public names are listed (``__all__``) and documented by the re-export module spikeforge.models.

#: Names of the input codes and readout decodings (the keys of their tables in :mod:`spikeforge.training.choices`).
ENCODINGS: tuple[str, ...] = tuple(ENCODERS)
DECODINGS: tuple[str, ...] = tuple(DECODERS)

#: Neuron parameters used when ``neuron_kwargs=None``, applied only to the parameters the chosen neuron
#: class has (``IF`` has no ``tau_mem``). A short membrane time constant (5 steps) with raw input
#: (``R I`` per step, no ``(1 - beta)`` factor) lets a 10-step network integrate its input quickly;
#: tuned on Yin-Yang (see ``benchmarks/RESULTS.md``).
DEFAULT_NEURON_KWARGS: dict[str, Any] = {"tau_mem": 5.0, "input_scaling": "none"}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model` (``TrainConfig.model``)."""
    return list(MODELS)


def list_encodings() -> list[str]:
    """Names accepted as ``encoding`` by :class:`SNNClassifier`."""
    return list(ENCODINGS)


def list_decodings() -> list[str]:
    """Names accepted as ``decoding`` by :class:`SNNClassifier`."""
    return list(DECODINGS)


def _neuron_kwargs(cls: type[Neuron], given: Mapping[str, Any] | None, width: int) -> dict[str, Any]:
    """Keyword arguments for one neuron layer of class ``cls`` with ``width`` features.

    ``given=None`` applies :data:`DEFAULT_NEURON_KWARGS` to the parameters ``cls`` accepts; an explicit
    mapping is passed unchanged (a wrong key fails loudly in the constructor). A constructor with a
    required ``size`` argument (the recurrent LIF) receives the layer width.
    """
    params = inspect.signature(cls.__init__).parameters
    if given is None:
        kwargs = {k: v for k, v in DEFAULT_NEURON_KWARGS.items() if k in params}
    else:
        if not isinstance(given, Mapping):
            raise TypeError(f"neuron_kwargs must be a dict or None, got {type(given).__name__}")
        kwargs = dict(given)
    size = params.get("size")
    if size is not None and size.default is inspect.Parameter.empty:
        kwargs.setdefault("size", width)
    return kwargs


def _neuron(name: str, surrogate: str, width: int, neuron_kwargs: Mapping[str, Any] | None) -> Neuron:
    cls = NEURON_REGISTRY[name]
    kwargs = _neuron_kwargs(cls, neuron_kwargs, width)
    if cls.capabilities.spiking:
        kwargs.setdefault("surrogate", surrogate)
    try:
        return get_neuron(name, **kwargs)
    except TypeError as err:
        raise TypeError(f"neuron {name!r} rejected neuron_kwargs {sorted(kwargs)}: {err}") from err


def _li_readout(neuron: str, surrogate: str, num_classes: int, neuron_kwargs: Mapping[str, Any] | None) -> Neuron:
    # The LI readout takes the membrane parameters it has (tau_mem, input_scaling) from neuron_kwargs.
    kwargs = _neuron_kwargs(LI, neuron_kwargs, num_classes)
    accepted = inspect.signature(LI.__init__).parameters
    return LI(**{k: v for k, v in kwargs.items() if k in accepted})


_READOUT_BUILDERS: dict[str, Callable[[str, str, int, Mapping[str, Any] | None], Neuron]] = {
    "li": _li_readout,
    "spiking": _neuron,  # the hidden neuron type, num_classes wide
}


def _dense_stack(
    n_in: int,
    widths: Sequence[int],
    num_classes: int,
    *,
    neuron: str,
    surrogate: str,
    neuron_kwargs: Mapping[str, Any] | None,
    dropout: float,
    readout: str,
    sparse: str,
    spike_input: bool,
) -> list[nn.Module]:
    """``[Linear -> neuron (-> Dropout)] * len(widths) -> Linear -> readout`` (names already validated); a Linear
    fed by spikes (``spike_input``: the stack's own input, e.g. pooled conv spikes) is built by ``spike_linear``."""
    layers: list[nn.Module] = []
    spikes, p_before = spike_input, 0.0

    def linear(n_out: int) -> nn.Linear:
        return spike_linear(n_in, n_out, sparse=sparse, dropout=p_before) if spikes else nn.Linear(n_in, n_out)

    for width in widths:
        layers += [linear(width), _neuron(neuron, surrogate, width, neuron_kwargs)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in, spikes, p_before = width, True, dropout
    layers.append(linear(num_classes))  # built before the readout: the RNG draws keep their order
    layers.append(_READOUT_BUILDERS[readout](neuron, surrogate, num_classes, neuron_kwargs))
    return layers


def _check_common(neuron: str, surrogate: str, dropout: object, readout: str, num_classes: object) -> float:
    check_positive_int("num_classes", num_classes)
    check_hidden_neuron(neuron)
    check_surrogate(surrogate)
    check_readout(readout)
    return check_dropout("dropout", dropout)


def build_mlp(
    in_features: int,
    hidden: Sequence[int],
    num_classes: int,
    *,
    neuron: str = "lif",
    surrogate: str = "fast_sigmoid",
    neuron_kwargs: Mapping[str, Any] | None = None,
    dropout: float = 0.0,
    readout: str = "li",
    sparse: str = "auto",
) -> SNNSequential:
    """Fully connected SNN: ``[Linear -> neuron (-> Dropout)] * len(hidden) -> Linear -> readout``.

    Args:
        in_features: input features per time step.
        hidden: widths of the spiking hidden layers, e.g. ``(128,)``; may be empty (a linear readout).
        num_classes: output width ``C``.
        neuron: registered neuron name (:func:`spikeforge.neurons.list_neurons`), must spike.
        surrogate: registered surrogate name (:func:`spikeforge.surrogate.list_surrogates`).
        neuron_kwargs: constructor arguments of every neuron layer (and of the LI readout, for the
            parameters it has). ``None`` uses :data:`DEFAULT_NEURON_KWARGS` where they apply.
        dropout: dropout probability after each hidden neuron layer (0 disables it).
        readout: ``"li"`` (non-spiking leaky integrator; membrane decodings) or ``"spiking"`` (the hidden
            neuron type; ``decoding="spike_count"``).
        sparse: ``"auto"``: a Linear after a spiking layer is a :class:`~spikeforge.events.SparseLinear` where
            :func:`~spikeforge.training.sparse_layers.spike_linear` says it pays; ``"off"``: all ``nn.Linear``.
    Returns:
        An :class:`SNNSequential` mapping ``[T, B, in_features] -> [T, B, num_classes]``.
    """
    check_positive_int("in_features", in_features)
    widths = check_widths("hidden", hidden, allow_empty=True)
    p = _check_common(neuron, surrogate, dropout, readout, num_classes)
    return SNNSequential(
        *_dense_stack(
            in_features,
            widths,
            num_classes,
            neuron=neuron,
            surrogate=surrogate,
            neuron_kwargs=neuron_kwargs,
            dropout=p,
            readout=readout,
            sparse=check_sparse("sparse", sparse),
            spike_input=False,
        )
    )


def build_conv(
    in_shape: tuple[int, int, int],
    channels: Sequence[int],
    hidden: Sequence[int],
    num_classes: int,
    *,
    neuron: str = "lif",
    surrogate: str = "fast_sigmoid",
    neuron_kwargs: Mapping[str, Any] | None = None,
    dropout: float = 0.0,
    readout: str = "li",
    kernel_size: int = 3,
    pool: int = 2,
    sparse: str = "auto",
) -> SNNSequential:
    """Convolutional SNN.

    ``[Conv2d(k, same padding, no bias) -> BatchNorm2d -> neuron -> MaxPool2d(pool)] * len(channels)
    -> Flatten -> [Linear -> neuron (-> Dropout)] * len(hidden) -> Linear -> readout``.

    Stateless layers see ``[T*B, C, H, W]`` (one call for all steps), so BatchNorm statistics are taken
    over time and batch together. Each block divides ``H`` and ``W`` by ``pool`` (floor).

    Args:
        in_shape: ``(C, H, W)`` of one input sample.
        channels: output channels of the conv blocks, e.g. ``(16, 32)``; at least one.
        hidden, num_classes, neuron, surrogate, neuron_kwargs, dropout, readout: as :func:`build_mlp`.
        kernel_size: odd convolution kernel size.
        pool: max-pooling window and stride (1 disables pooling).
        sparse: as :func:`build_mlp` (the first Linear sees max-pooled spikes). Convolutions stay ``nn.Conv2d``:
            ``SparseConv2d`` was 1.2-1.45x slower than dense at 0.1 % density on the second conv, whose input
            measured 32-36 % (``benchmarks/sparse_default.py``).
    Returns:
        An :class:`SNNSequential` mapping ``[T, B, C, H, W] -> [T, B, num_classes]``.
    """
    if not isinstance(in_shape, Sequence) or len(in_shape) != 3:
        raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}; use build_mlp for flat inputs")
    c_in, h, w = (check_positive_int("in_shape entry", d) for d in in_shape)
    chans = check_widths("channels", channels, allow_empty=False)
    widths = check_widths("hidden", hidden, allow_empty=True)
    check_positive_int("pool", pool)
    check_sparse("sparse", sparse)
    if check_positive_int("kernel_size", kernel_size) % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
    p = _check_common(neuron, surrogate, dropout, readout, num_classes)
    layers: list[nn.Module] = []
    for c in chans:
        layers += [
            nn.Conv2d(c_in, c, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c),
            _neuron(neuron, surrogate, c, neuron_kwargs),
        ]
        if pool > 1:
            layers.append(nn.MaxPool2d(pool))
            h, w = h // pool, w // pool
            if h < 1 or w < 1:
                raise ValueError(
                    f"{len(chans)} pooling blocks shrink {tuple(in_shape)} to nothing; "
                    "use fewer channels entries or pool=1"
                )
        c_in = c
    layers.append(nn.Flatten())
    layers += _dense_stack(
        c_in * h * w,
        widths,
        num_classes,
        neuron=neuron,
        surrogate=surrogate,
        neuron_kwargs=neuron_kwargs,
        dropout=p,
        readout=readout,
        sparse=sparse,
        spike_input=True,  # MaxPool2d of spikes is spikes (an AvgPool2d would not be)
    )
    return SNNSequential(*layers)


def _mlp_model(
    config: TrainConfig, in_shape: tuple[int, ...], num_classes: int, common: dict[str, Any]
) -> SNNSequential:
    net = build_mlp(math.prod(in_shape), config.hidden, num_classes, sparse=config.sparse, **common)
    if len(in_shape) > 1:  # flatten image inputs: [T, B, C, H, W] -> [T, B, C*H*W]
        net = SNNSequential(nn.Flatten(), *net.layers)
    return net


def _conv_model(
    config: TrainConfig, in_shape: tuple[int, ...], num_classes: int, common: dict[str, Any]
) -> SNNSequential:
    if len(in_shape) != 3:
        raise ValueError(f"model 'conv' needs (C, H, W) inputs but the dataset has shape {in_shape}; use model='mlp'")
    return build_conv(in_shape, config.channels, config.hidden, num_classes, sparse=config.sparse, **common)


#: One network builder per :data:`spikeforge.training.choices.MODELS` name.
MODEL_BUILDERS: dict[str, Callable[[TrainConfig, tuple[int, ...], int, dict[str, Any]], SNNSequential]] = {
    "mlp": _mlp_model,
    "conv": _conv_model,
    "delay-mlp": lambda *a: DM.build_delay_mlp(*a, neuron=_neuron, readouts=_READOUT_BUILDERS),
    "srm": lambda *a: DM.build_srm(*a, neuron=_neuron, readouts=_READOUT_BUILDERS),
    **TRANSFORMER_BUILDERS,  # spikformer, sdt, vit-twin
}


def build_model(config: TrainConfig, dataset_info: Any) -> SNNClassifier:
    """Build the classifier described by a :class:`~spikeforge.train.TrainConfig` for a dataset.

    ``dataset_info`` needs ``input_shape`` and ``num_classes`` (a :class:`spikeforge.data.DatasetInfo`); the network
    takes its ``step_shape`` (a sequence dataset's per-step features).
    ``"mlp"`` flattens any input shape; ``"conv"`` needs ``(C, H, W)`` inputs. The readout is an LI for the
    membrane decodings and a spiking layer for ``"spike_count"``. The names were validated by the config.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    in_shape = tuple(int(d) for d in getattr(dataset_info, "step_shape", dataset_info.input_shape))
    common: dict[str, Any] = dict(
        neuron=config.neuron,
        surrogate=config.surrogate,
        neuron_kwargs=config.neuron_kwargs,
        dropout=config.dropout,
        readout="spiking" if config.decoding == "spike_count" else "li",
    )
    net = MODEL_BUILDERS[check_model(config.model)](config, in_shape, int(dataset_info.num_classes), common)
    return SNNClassifier(
        net,
        time_steps=config.time_steps,
        encoding=config.encoding,
        decoding=config.decoding,
        encoding_kwargs=config.encoding_kwargs,
    )
