r"""Spiking patch splitting, the classifier head and whole spiking-transformer networks.

A network maps images ``[T, B, C, H, W]`` to per-step class scores ``[T, B, classes]`` and ends in a
non-spiking :class:`~spikeforge.neurons.LI` readout, so it is an :class:`~spikeforge.layers.SNNSequential`
that :class:`spikeforge.models.SNNClassifier` decodes like any other::

    net = build_transformer("sdt", (1, 28, 28), 10)              # 2 blocks, D = 64, 4 heads, 49 tokens
    out, _ = net(x_seq)                                          # [T, B, 1, 28, 28] -> [T, B, 10]

``kind``: ``"sdt"`` (Spike-driven Transformer), ``"spikformer"``; ``spiking=False`` builds the non-spiking twin
(ReLU, softmax attention) with the identical ``state_dict``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch import nn

from spikeforge._core.bn_fold import fold_bn
from spikeforge.layers import SequenceLayer
from spikeforge.layers import SNNSequential
from spikeforge.layers import _has_hooks
from spikeforge.layers import _static_prefix
from spikeforge.neurons import LI
from spikeforge.transformer._ops import TokenMean
from spikeforge.transformer._ops import check_tokens
from spikeforge.transformer.blocks import Block
from spikeforge.transformer.blocks import LinearBN
from spikeforge.transformer.blocks import act
from spikeforge.transformer.blocks import make_act

__all__ = [
    "TransformerOptions", "check_transformer_options", "ConvBN", "PatchSplit", "TransformerBody", "Head",
    "build_transformer", "fold_batchnorm", "KINDS",
]  # fmt: skip

KINDS: tuple[str, ...] = ("sdt", "spikformer")


@dataclass(frozen=True)
class TransformerOptions:
    """Size of a spiking transformer (CPU defaults for 28x28 images: 49 tokens of 64 channels, 2 blocks).

    Attributes: ``dim`` (token channels D, a multiple of ``heads``), ``depth`` (blocks), ``heads``,
    ``mlp_ratio`` (MLP hidden width = ``mlp_ratio * dim``)."""

    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: int = 4


def check_transformer_options(options: Mapping[str, Any] | None) -> TransformerOptions:
    """:class:`TransformerOptions` from a dict (``None``: the defaults); unknown keys or bad values raise."""
    if options is None:
        return TransformerOptions()
    if not isinstance(options, Mapping):
        raise TypeError(f"transformer options must be a dict or None, got {type(options).__name__}")
    names = TransformerOptions.__dataclass_fields__
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"unknown transformer options {unknown}; valid: {', '.join(names)}")
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"transformer option {key} must be a positive int, got {value!r}")
    o = TransformerOptions(**options)
    if o.dim % o.heads:
        raise ValueError(f"transformer dim={o.dim} must be a multiple of heads={o.heads}")
    if o.dim < 2:
        raise ValueError(
            f"transformer dim must be at least 2 (the stem's first conv has dim // 2 channels), got {o.dim}"
        )
    return o


class ConvBN(nn.Module):
    """``BN(conv3x3(x))`` on ``[T, B, C, H, W]`` (time folded into the batch; no bias, same padding)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        t, b = x.shape[:2]
        y = self.bn(self.conv(x.reshape(t * b, *x.shape[2:])))
        return y.reshape(t, b, *y.shape[1:])


def _pool(x: Tensor) -> Tensor:
    t, b = x.shape[:2]
    y = nn.functional.max_pool2d(x.reshape(t * b, *x.shape[2:]), 2)
    return y.reshape(t, b, *y.shape[1:])


def _conv_bn_steps(layer: ConvBN, x: Tensor) -> Tensor:
    """``layer(x)``; run on one step and broadcast over time when every step of ``x`` is the same image (the
    ``"constant"`` code; see :class:`~spikeforge.layers.SNNSequential`), ``x`` needs no gradient and no hook
    watches the conv or BN."""
    if _has_hooks(layer) or _static_prefix([layer.conv, layer.bn], x) < 2:  # the same tests as SNNSequential's
        return layer(x)
    return layer(x[:1]).expand(x.shape[0], -1, -1, -1, -1).contiguous()


def _pool_spikes(neuron: nn.Module, u: Tensor) -> Tensor:
    """``_pool(act(neuron, u))``: through the neuron's fused LIF + 2x2 max pool (spikes never stored) where it
    offers one (see :meth:`~spikeforge.neurons.LIF.run_pooled`), else one after the other."""
    run_pooled = getattr(neuron, "run_pooled", None)
    if run_pooled is not None and not _has_hooks(neuron) and u.shape[-1] % 2 == 0 and u.shape[-2] % 2 == 0:
        fused = run_pooled(u, None, 2, True)
        if fused is not None:
            return fused[0]
    return _pool(act(neuron, u))


class PatchSplit(SequenceLayer):
    """Spiking patch splitting: images ``[T, B, C, H, W]`` -> tokens ``[T, B, (H//4)(W//4), D]``.

    ``s1 = SN(BN(conv1(x)))``, 2x2 max pool; ``u = pool(BN(conv2(s1)))`` (D channels); ``s2 = SN(u)``; then the
    relative position embedding ``BN(conv_rpe(s2))`` is added: to the membrane ``u`` (``kind="sdt"``, the
    membrane shortcut) or, through its own neuron, to the spikes ``s2`` (``"spikformer"``). ``conv1`` reads the
    real pixels (the one non-spike input of the Spike-driven Transformer); the other convs read spikes.
    """

    def __init__(
        self, kind: str, in_channels: int, dim: int, *, spiking: bool = True, surrogate: str = "fast_sigmoid",
        neuron_kwargs: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.kind, self.in_channels = kind, in_channels
        self.conv1, self.conv2, self.rpe = ConvBN(in_channels, dim // 2), ConvBN(dim // 2, dim), ConvBN(dim, dim)
        self.act1, self.act2 = (make_act(spiking, surrogate, neuron_kwargs) for _ in range(2))
        if kind == "spikformer":
            self.rpe_act = make_act(spiking, surrogate, neuron_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[2] != self.in_channels or x.shape[3] < 4 or x.shape[4] < 4:
            raise ValueError(
                f"PatchSplit expects images [T, B, C={self.in_channels}, H>=4, W>=4], got shape {tuple(x.shape)}"
            )
        s1 = _pool_spikes(self.act1, _conv_bn_steps(self.conv1, x))
        u = _pool(self.conv2(s1))  # [T, B, D, H/4, W/4], real (a membrane)
        s2 = act(self.act2, u)
        pos = self.rpe(s2)
        y = u + pos if self.kind == "sdt" else s2 + act(self.rpe_act, pos)
        return y.flatten(3).transpose(2, 3)  # [T, B, N, D]


class TransformerBody(SequenceLayer):
    """The blocks, tokens ``[T, B, N, D]`` in and out."""

    def __init__(self, blocks: list[Block], dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        check_tokens(x, "TransformerBody input", dim=self.dim)
        for block in self.blocks:
            x = block(x)
        return x


class Head(SequenceLayer):
    """Tokens ``[T, B, N, D]`` -> class scores ``[T, B, classes]``: (``kind="sdt"``: a neuron first, so the
    Linear reads spikes) a Linear per token, then the mean over tokens (``mean(x) W = mean(x W)``: the same
    scores as pooling first, with binary Linear inputs)."""

    def __init__(
        self, kind: str, dim: int, num_classes: int, *, spiking: bool = True, surrogate: str = "fast_sigmoid",
        neuron_kwargs: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.kind = kind
        if kind == "sdt":
            self.act = make_act(spiking, surrogate, neuron_kwargs)
        self.fc = nn.Linear(dim, num_classes)
        self.pool = TokenMean()

    def forward(self, x: Tensor) -> Tensor:
        check_tokens(x, "Head input", dim=self.fc.in_features)
        if self.kind == "sdt":
            x = act(self.act, x)
        return self.pool(self.fc(x))


def build_transformer(
    kind: str,
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    options: TransformerOptions | Mapping[str, Any] | None = None,
    spiking: bool = True,
    surrogate: str = "fast_sigmoid",
    neuron_kwargs: Mapping[str, Any] | None = None,
) -> SNNSequential:
    """``PatchSplit -> TransformerBody -> Head -> LI`` readout: ``[T, B, C, H, W] -> [T, B, num_classes]``.

    Args:
        kind: ``"sdt"`` or ``"spikformer"``.
        in_shape: ``(C, H, W)`` with ``H, W >= 4`` (``(H//4) * (W//4)`` tokens).
        num_classes: output width.
        options: :class:`TransformerOptions` or a dict of its fields.
        spiking: False builds the non-spiking twin (ReLU for every LIF, softmax attention), same state_dict.
        surrogate: surrogate gradient of every LIF.
        neuron_kwargs: LIF options overriding :data:`~spikeforge.transformer.blocks.LIF_DEFAULTS`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown transformer kind {kind!r}; choose one of {KINDS}")
    o = options if isinstance(options, TransformerOptions) else check_transformer_options(options)
    if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3 or min(in_shape[1:]) < 4:
        raise ValueError(f"transformer models need (C, H, W) images with H, W >= 4, got input shape {in_shape}")
    opts: dict[str, Any] = dict(spiking=spiking, surrogate=surrogate, neuron_kwargs=neuron_kwargs)
    blocks = [Block(kind, o.dim, o.heads, o.mlp_ratio, **opts) for _ in range(o.depth)]
    return SNNSequential(
        PatchSplit(kind, int(in_shape[0]), o.dim, **opts),
        TransformerBody(blocks, o.dim),
        Head(kind, o.dim, num_classes, **opts),
        LI(5.0, input_scaling="none"),
    )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for inference with every :class:`LinearBN`/:class:`ConvBN` BatchNorm folded into its
    Linear/Conv (:func:`spikeforge._core.bn_fold.fold_bn`) and replaced by ``nn.Identity``; outputs equal the
    eval-mode model's up to float rounding. ``model`` is not modified."""
    if any(m.training for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        raise ValueError("fold_batchnorm folds running statistics: call model.eval() first")
    folded = copy.deepcopy(model)
    for m in folded.modules():
        if isinstance(m, (LinearBN, ConvBN)) and isinstance(m.bn, nn.modules.batchnorm._BatchNorm):
            layer = m.lin if isinstance(m, LinearBN) else m.conv
            fused = fold_bn(layer, m.bn)
            if isinstance(m, LinearBN):
                m.lin = fused  # type: ignore[assignment]
            else:
                m.conv = fused  # type: ignore[assignment]
            m.bn = nn.Identity()
    return folded
