r"""Ready-made spiking classifiers built from the core layers, and the classifier wrapper.

A classifier is three parts, each replaceable by hand:

1. **encoding** ``x [B, ...] -> x_seq [T, B, ...]`` (:mod:`spikeforge.encoding`: ``"constant"`` current
   injection, ``"rate"`` Bernoulli spikes, ``"latency"`` time-to-first-spike);
2. **network**: an :class:`~spikeforge.layers.SNNSequential` of stateless layers (run once on
   ``[T*B, ...]``) and neuron layers (run through the one time loop), ending in a readout;
3. **decoding** ``out_seq [T, B, C] -> logits [B, C]``:

   * ``"max_membrane"``: :math:`\text{logit}_c = \max_t V_c[t]` of a non-spiking :class:`~spikeforge.neurons.LI`
     readout (the loss is then the max-over-time membrane cross-entropy, e.g. Cramer et al. 2020);
   * ``"mean_membrane"``: :math:`\text{logit}_c = \frac1T \sum_t V_c[t]`;
   * ``"spike_count"``: :math:`\text{logit}_c = \sum_t z_c[t]` of a *spiking* readout layer.

Composition by hand is the same thing the builders do::

    net = SNNSequential(nn.Linear(4, 128), LIF(5.0, input_scaling="none"),
                        nn.Linear(128, 3), LI(5.0, input_scaling="none"))
    model = SNNClassifier(net, time_steps=10, encoding="constant", decoding="max_membrane")
    logits = model(x)                       # x [B, 4] -> [B, 3]
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from spikeforge.layers import SNNSequential
from spikeforge.neurons import NEURON_REGISTRY, LI, Neuron, get_neuron, list_neurons
from spikeforge.surrogate import get_surrogate, list_surrogates

if TYPE_CHECKING:  # pragma: no cover
    from spikeforge.train import TrainConfig

__all__ = [
    "ENCODINGS",
    "DECODINGS",
    "DEFAULT_NEURON_KWARGS",
    "build_mlp",
    "build_conv",
    "build_model",
    "list_models",
    "list_encodings",
    "list_decodings",
    "SNNClassifier",
]

ENCODINGS = ("constant", "rate", "latency")
DECODINGS = ("max_membrane", "mean_membrane", "spike_count")
_MODELS = ("mlp", "conv")
_READOUTS = ("li", "spiking")

#: Neuron parameters used when ``neuron_kwargs=None``, applied only to the parameters the chosen neuron
#: class has (``IF`` has no ``tau_mem``). A short membrane time constant (5 steps) with raw input
#: (``R I`` per step, no ``(1 - beta)`` factor) lets a 10-step network integrate its input quickly;
#: tuned on Yin-Yang (see ``benchmarks/RESULTS.md``).
DEFAULT_NEURON_KWARGS: dict[str, Any] = {"tau_mem": 5.0, "input_scaling": "none"}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model` (``TrainConfig.model``)."""
    return list(_MODELS)


def list_encodings() -> list[str]:
    """Names accepted as ``encoding`` by :class:`SNNClassifier`."""
    return list(ENCODINGS)


def list_decodings() -> list[str]:
    """Names accepted as ``decoding`` by :class:`SNNClassifier`."""
    return list(DECODINGS)


def _check_choice(kind: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(choices)}")
    return value


def _check_widths(name: str, widths: Sequence[int], *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"{name} must be a sequence of positive ints, e.g. (128,), got {widths!r}")
    out = tuple(widths)
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in out):
        raise ValueError(f"{name} must hold positive ints, got {widths!r}")
    if not out and not allow_empty:
        raise ValueError(f"{name} must not be empty; give at least one width")
    return out


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


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
    _check_choice("neuron", name, list_neurons())
    cls = NEURON_REGISTRY[name]
    kwargs = _neuron_kwargs(cls, neuron_kwargs, width)
    if cls.capabilities.spiking:
        kwargs.setdefault("surrogate", surrogate)
    try:
        return get_neuron(name, **kwargs)
    except TypeError as err:
        raise TypeError(f"neuron {name!r} rejected neuron_kwargs {sorted(kwargs)}: {err}") from err


def _check_spiking(name: str) -> None:
    if not NEURON_REGISTRY[name].capabilities.spiking:
        spiking = [n for n in list_neurons() if NEURON_REGISTRY[n].capabilities.spiking]
        raise ValueError(f"neuron {name!r} does not spike; choose a spiking neuron: {', '.join(spiking)}")


def _readout(
    readout: str, neuron: str, surrogate: str, num_classes: int, neuron_kwargs: Mapping[str, Any] | None
) -> Neuron:
    _check_choice("readout", readout, _READOUTS)
    if readout == "spiking":
        return _neuron(neuron, surrogate, num_classes, neuron_kwargs)
    # The LI readout takes the membrane parameters it has (tau_mem, input_scaling) from neuron_kwargs.
    kwargs = _neuron_kwargs(LI, neuron_kwargs, num_classes)
    accepted = inspect.signature(LI.__init__).parameters
    return LI(**{k: v for k, v in kwargs.items() if k in accepted})


def _validate_names(neuron: str, surrogate: str) -> None:
    _check_choice("neuron", neuron, list_neurons())
    _check_spiking(neuron)
    _check_choice("surrogate", surrogate, list_surrogates())
    get_surrogate(surrogate)  # constructible with its defaults


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
    Returns:
        An :class:`SNNSequential` mapping ``[T, B, in_features] -> [T, B, num_classes]``.
    """
    _check_positive_int("in_features", in_features)
    _check_positive_int("num_classes", num_classes)
    widths = _check_widths("hidden", hidden, allow_empty=True)
    _validate_names(neuron, surrogate)
    if not isinstance(dropout, (int, float)) or not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    layers: list[nn.Module] = []
    n_in = in_features
    for width in widths:
        layers += [nn.Linear(n_in, width), _neuron(neuron, surrogate, width, neuron_kwargs)]
        if dropout > 0:
            layers.append(nn.Dropout(float(dropout)))
        n_in = width
    layers += [nn.Linear(n_in, num_classes), _readout(readout, neuron, surrogate, num_classes, neuron_kwargs)]
    return SNNSequential(*layers)


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
    Returns:
        An :class:`SNNSequential` mapping ``[T, B, C, H, W] -> [T, B, num_classes]``.
    """
    if not isinstance(in_shape, Sequence) or len(in_shape) != 3:
        raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}; use build_mlp for flat inputs")
    c_in, h, w = (_check_positive_int("in_shape entry", d) for d in in_shape)
    chans = _check_widths("channels", channels, allow_empty=False)
    widths = _check_widths("hidden", hidden, allow_empty=True)
    _check_positive_int("num_classes", num_classes)
    _check_positive_int("pool", pool)
    if _check_positive_int("kernel_size", kernel_size) % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
    _validate_names(neuron, surrogate)
    if not isinstance(dropout, (int, float)) or not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
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
                raise ValueError(f"{len(chans)} pooling blocks shrink {tuple(in_shape)} to nothing; use fewer channels entries or pool=1")
        c_in = c
    layers.append(nn.Flatten())
    n_in = c_in * h * w
    for width in widths:
        layers += [nn.Linear(n_in, width), _neuron(neuron, surrogate, width, neuron_kwargs)]
        if dropout > 0:
            layers.append(nn.Dropout(float(dropout)))
        n_in = width
    layers += [nn.Linear(n_in, num_classes), _readout(readout, neuron, surrogate, num_classes, neuron_kwargs)]
    return SNNSequential(*layers)


class SNNClassifier(nn.Module):
    """Encoder + :class:`SNNSequential` + decoder: ``x [B, ...] -> logits [B, C]``.

    Args:
        network: maps ``[T, B, ...] -> [T, B, C]``; its last neuron layer is the readout.
        time_steps: ``T``, number of simulation steps per sample.
        encoding: ``"constant"`` (the value is injected as a current at every step), ``"rate"`` (Bernoulli
            spikes with probability ``clamp(gain * x, 0, 1)``) or ``"latency"`` (one spike per feature,
            larger values earlier); see :mod:`spikeforge.encoding`.
        decoding: ``"max_membrane"``, ``"mean_membrane"`` or ``"spike_count"`` (see the module docstring).
        encoding_kwargs: extra keyword arguments of the encoder (e.g. ``{"gain": 0.5}`` for rate,
            ``{"mode": "log"}`` for latency).
    """

    def __init__(
        self,
        network: SNNSequential,
        *,
        time_steps: int,
        encoding: str = "constant",
        decoding: str = "max_membrane",
        encoding_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(network, SNNSequential):
            raise TypeError(f"network must be a spikeforge.layers.SNNSequential, got {type(network).__name__}")
        self.time_steps = _check_positive_int("time_steps", time_steps)
        self.encoding = _check_choice("encoding", encoding, ENCODINGS)
        self.decoding = _check_choice("decoding", decoding, DECODINGS)
        if encoding_kwargs is not None and not isinstance(encoding_kwargs, Mapping):
            raise TypeError(f"encoding_kwargs must be a dict or None, got {type(encoding_kwargs).__name__}")
        self.encoding_kwargs = dict(encoding_kwargs or {})
        if self.encoding == "constant" and self.encoding_kwargs:
            raise ValueError(f"constant encoding takes no options, got {sorted(self.encoding_kwargs)}")
        neurons = network.neuron_layers
        if not neurons:
            raise ValueError("network has no neuron layer; end it with a readout such as spikeforge.neurons.LI()")
        last = neurons[-1]
        if decoding == "spike_count" and not last.spiking:
            raise ValueError("decoding='spike_count' needs a spiking readout (build with readout='spiking')")
        if decoding != "spike_count" and last.spiking:
            raise ValueError(f"decoding={decoding!r} reads a membrane; end the network with a non-spiking LI readout")
        self.network = network

    def encode(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Encode a static batch ``x [B, ...]`` into ``x_seq [T, B, ...]`` (``generator`` for ``"rate"``)."""
        from spikeforge import encoding as enc

        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor [B, ...], got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(f"x must be a batch [B, ...] with at least 2 dims, got shape {tuple(x.shape)}; add x.unsqueeze(0)")
        if self.encoding == "constant":
            return enc.constant(x, self.time_steps)
        if self.encoding == "rate":
            return enc.rate(x, self.time_steps, generator=generator, **self.encoding_kwargs)
        return enc.latency(x, self.time_steps, **self.encoding_kwargs)

    def decode(self, out_seq: Tensor) -> Tensor:
        """Readout sequence ``[T, B, C]`` -> logits ``[B, C]`` (see the module docstring)."""
        if self.decoding == "max_membrane":
            return out_seq.max(dim=0).values
        if self.decoding == "mean_membrane":
            return out_seq.mean(dim=0)
        return out_seq.sum(dim=0)

    def forward_seq(self, x: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, list[Any]]:
        """Encode and run the network: returns ``(out_seq [T, B, C], final neuron states)``."""
        return self.network(self.encode(x, generator=generator))

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None, encoded: bool = False) -> Tensor:
        """Logits ``[B, C]`` for a batch ``x [B, ...]``, or for an already encoded ``x [T, B, ...]`` if ``encoded``."""
        if encoded:
            if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] != self.time_steps:
                shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"encoded input must be [T={self.time_steps}, B, ...], got {shape}")
            out_seq, _ = self.network(x)
        else:
            out_seq, _ = self.forward_seq(x, generator=generator)
        return self.decode(out_seq)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, encoding={self.encoding!r}, decoding={self.decoding!r}"


def build_model(config: "TrainConfig", dataset_info: Any) -> SNNClassifier:
    """Build the classifier described by a :class:`~spikeforge.train.TrainConfig` for a dataset.

    ``dataset_info`` needs ``input_shape`` and ``num_classes`` (a :class:`spikeforge.data.DatasetInfo`).
    ``"mlp"`` flattens any input shape; ``"conv"`` needs ``(C, H, W)`` inputs. The readout is an LI for the
    membrane decodings and a spiking layer for ``"spike_count"``.
    """
    model = _check_choice("model", config.model, _MODELS)
    decoding = _check_choice("decoding", config.decoding, DECODINGS)
    in_shape = tuple(int(d) for d in dataset_info.input_shape)
    num_classes = int(dataset_info.num_classes)
    readout = "spiking" if decoding == "spike_count" else "li"
    common: dict[str, Any] = dict(
        neuron=config.neuron,
        surrogate=config.surrogate,
        neuron_kwargs=config.neuron_kwargs,
        dropout=config.dropout,
        readout=readout,
    )
    if model == "mlp":
        net = build_mlp(int(torch.tensor(in_shape).prod()), config.hidden, num_classes, **common)
        if len(in_shape) > 1:  # flatten image inputs: [T, B, C, H, W] -> [T, B, C*H*W]
            net = SNNSequential(nn.Flatten(), *net.layers)
    else:
        if len(in_shape) != 3:
            raise ValueError(f"model 'conv' needs (C, H, W) inputs but {getattr(dataset_info, 'name', 'the dataset')} has shape {in_shape}; use model='mlp'")
        net = build_conv(in_shape, config.channels, config.hidden, num_classes, **common)  # type: ignore[arg-type]
    return SNNClassifier(
        net,
        time_steps=config.time_steps,
        encoding=config.encoding,
        decoding=decoding,
        encoding_kwargs=config.encoding_kwargs,
    )
