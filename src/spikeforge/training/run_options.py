"""The run options of :class:`~spikeforge.training.config.TrainConfig` that pick how a run executes and what it
reports, not the model: ``sparse`` and ``select`` (re-exported by :mod:`spikeforge.training.choices`)."""

from __future__ import annotations

__all__ = ["SELECT_RULES", "check_select", "SPARSE_MODES", "check_sparse"]

#: ``TrainConfig.select``: which epoch's weights a run reports and saves as ``best.pt``.
SELECT_RULES: tuple[str, ...] = ("last", "best_val")


def _one_of(name: str, value: object, valid: tuple[str, ...], meaning: str, fix: str) -> str:
    """``value`` if it is one of ``valid``, else a ``ValueError``: ``name``, what the values mean, the fix."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name} must be {meaning}, got {value!r}; {fix}")
    return value


def check_select(name: str, value: object) -> str:
    """``value`` if it is one of :data:`SELECT_RULES`, else a ``ValueError`` naming the valid values."""
    meaning = "'last' (the last epoch's weights) or 'best_val' (the epoch with the best validation accuracy)"
    return _one_of(name, value, SELECT_RULES, meaning, "e.g. --select best_val")


#: ``TrainConfig.sparse``: ``"auto"`` builds a :class:`~spikeforge.events.SparseLinear` where
#: :func:`spikeforge.training.sparse_layers.spike_linear` says it can pay; ``"off"`` builds plain ``nn.Linear`` layers.
SPARSE_MODES: tuple[str, ...] = ("auto", "off")


def check_sparse(name: str, value: object) -> str:
    """``value`` if it is one of :data:`SPARSE_MODES`, else a ``ValueError`` naming the valid values."""
    meaning = "'auto' (spike-sparse Linear layers where they pay) or 'off' (plain nn.Linear)"
    return _one_of(
        name, value, SPARSE_MODES, meaning, "use --sparse off (sparse='off') to turn spike-sparse execution off"
    )
