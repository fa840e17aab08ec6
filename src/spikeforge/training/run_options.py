"""The run options of :class:`~spikeforge.training.config.TrainConfig` that pick how a run executes and what it
reports, not the model: ``sparse`` and ``select`` (re-exported by :mod:`spikeforge.training.choices`)."""

from __future__ import annotations

__all__ = ["SELECT_RULES", "check_select", "SPARSE_MODES", "check_sparse"]

#: ``TrainConfig.select``: which epoch's weights a run reports and saves as ``best.pt``.
SELECT_RULES: tuple[str, ...] = ("last", "best_val")


def check_select(name: str, value: object) -> str:
    """``value`` if it is one of :data:`SELECT_RULES`, else a ``ValueError`` naming the valid values."""
    if not isinstance(value, str) or value not in SELECT_RULES:
        raise ValueError(
            f"{name} must be 'last' (the last epoch's weights) or 'best_val' (the epoch with the best validation "
            f"accuracy), got {value!r}; e.g. --select best_val"
        )
    return value


#: ``TrainConfig.sparse``: ``"auto"`` builds a :class:`~spikeforge.events.SparseLinear` where
#: :func:`spikeforge.training.sparse_layers.spike_linear` says it can pay; ``"off"`` builds plain ``nn.Linear`` layers.
SPARSE_MODES: tuple[str, ...] = ("auto", "off")


def check_sparse(name: str, value: object) -> str:
    """``value`` if it is one of :data:`SPARSE_MODES`, else a ``ValueError`` naming the valid values."""
    if not isinstance(value, str) or value not in SPARSE_MODES:
        raise ValueError(
            f"{name} must be 'auto' (spike-sparse Linear layers where they pay) or 'off' (plain nn.Linear), got "
            f"{value!r}; use --sparse off (sparse='off') to turn spike-sparse execution off"
        )
    return value
