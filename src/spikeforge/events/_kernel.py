r"""The event-driven update loop of :class:`~spikeforge.events.engine.StreamingEngine` (batch 1): its data
layout (the NamedTuples below), the input scan :func:`dense_csr`, and :func:`get_advance`, which compiles the
loops of :mod:`spikeforge.events._loop` with Numba or returns them to run interpreted (slow, but identical).

The loops are plain Python over numpy arrays. Layer ``l`` has ``N_l`` neurons stored at
``[off[l], off[l] + N_l)`` of the flat per-neuron arrays. One compiled call
(:func:`~spikeforge.events._loop.advance`) runs the whole sequence, every layer, with no Python per step.
Per time step ``t`` and layer, in network order:

1. **Synaptic accumulation, one weight column per input spike.** Linear: input ``j`` adds row ``j`` of ``W^T``
   (``N_l`` additions), the step's rows summed in input order in the weights' precision, eight or four per pass
   (:mod:`spikeforge.events._accumulate`; tables of 2 MiB or more on huge pages, :mod:`spikeforge.events._pages`),
   the last pass (1-4 rows) adding the sum to the float64 current; Conv2d: input ``j`` adds, per kernel tap that
   lands on an output position, the ``C_out`` weights of the tap to that position's channels-last float64 currents
   (:mod:`spikeforge.events._conv_taps`; each current the float64 sum of its terms in input order, bit-identical to
   the generic fan-out lists of ``conv_taps=False``); the neurons of the touched positions are listed channel by
   channel and updated with the per-neuron arithmetic below, the layer's code path chosen once
   (:mod:`spikeforge.events._conv_update`). DelayedLinear: the step's inputs enter the layer's delay line and the
   inputs sent ``d`` steps ago leave it (:mod:`spikeforge.events._delay_line`); per axon they add W^T rows as a
   Linear layer, per synapse each delay group's fan-out list. Recurrent layers add row ``j`` of ``W_rec^T`` for
   every own spike of step ``t - 1``. Each addition is one synaptic operation.
2. **Due neurons.** A neuron that received nothing is evaluated only at the step ``due[n]`` from
   which it could cross threshold on its own (bias drive, a post-reset membrane above threshold,
   a resting potential above threshold, a CubaLIF synaptic current still charging the membrane).
   The per-layer minimum ``min_due[l]`` skips the scan on steps when nothing is due.
3. **Lazy leak, then the step.** A touched neuron last updated at step ``s`` first catches up over the
   ``k = t - 1 - s`` input-free steps in closed form (below), then takes step ``t`` with the same
   arithmetic, in the same order, as the neuron's pure step function, then resets. A Linear layer
   that receives a spike touches all its neurons; for IF/LIF without bias this runs as one vectorised,
   branch-free pass (``_whole_layer.update_all_simple``, with scalar parameters when they are uniform) plus a
   compaction of the spike flags, and a layer that receives nothing costs nothing at that step. Such
   a whole-layer update leaves ``last`` (all ``t``) and ``due`` (all NEVER, the usual case) unwritten:
   they are written when a per-neuron update of the layer needs them, and at the end of the call.

Input-free evolution over ``k`` steps (constant per-step drive ``b`` from a layer bias; ``g`` the input gain):

* IF: ``v + k g b``.
* LIF: ``v_inf + beta^k (v - v_inf)``, ``v_inf = v_rest + g b / (1 - beta)``.
* CubaLIF (no bias): ``i_k = alpha^k i``,
  ``v_k = v_rest + beta^k (v - v_rest) + g i alpha (beta^k - alpha^k) / (beta - alpha)``
  (``g i k alpha^k`` when ``alpha = beta``).

Spikes are exactly those of the dense step loop except where a membrane lands within rounding error
of threshold (the closed form and ``k`` repeated steps round differently).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from typing import NamedTuple
from typing import cast

from spikeforge.backends import numba_available
from spikeforge.events._layout import dense_csr

__all__ = ["Kernels", "get_advance", "numba_available", "entry_point"]


class Kernels(NamedTuple):
    """The engine's loops: :func:`~spikeforge.events._loop.advance`,
    :func:`~spikeforge.events._closed_form.init_due`, :func:`dense_csr` and the state check
    :func:`~spikeforge.events._checks.scan_state`."""

    advance: Callable[..., None]
    init_due: Callable[..., None]
    dense_csr: Callable[..., int]
    scan_state: Callable[..., int]


def get_advance(use_numba: bool) -> Kernels:
    """The loops compiled by Numba (``use_numba=True``; ImportError without numba) or interpreted."""
    if use_numba:
        return _compiled()
    from spikeforge.events import _checks
    from spikeforge.events import _closed_form
    from spikeforge.events import _loop

    return Kernels(_loop.advance, _closed_form.init_due, dense_csr, _checks.scan_state)


@functools.cache
def _compiled() -> Kernels:
    """Compiled once per process (and cached on disk by Numba); the helpers of :mod:`spikeforge.events._loop`
    and :mod:`spikeforge.events._closed_form` are compiled into the loops that call them."""
    if not numba_available():
        raise ImportError("the compiled event engine needs numba: pip install numba (or pass use_numba=False)")
    import numba

    from spikeforge.events import _checks
    from spikeforge.events import _closed_form
    from spikeforge.events import _loop

    jit: Any = numba.njit(cache=True, nogil=True)
    return Kernels(jit(_loop.advance), jit(_closed_form.init_due), jit(dense_csr), jit(_checks.scan_state))


def entry_point(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[..., Any]:
    """``fn`` resolved once for the types of ``args``: a Numba dispatcher's compiled entry point for exactly that
    signature (loaded from the disk cache or compiled), which skips the per-call type dispatch (about 20 us for
    the loop's tuples of arrays, more than the whole call at low activity); ``fn`` itself when it is interpreted.

    The entry point does not check types: every later call must pass arguments of the same types (dtypes, ranks,
    C-contiguous, aligned, writeable), which the engine guarantees for its own arrays and checks for the rest."""
    if not hasattr(fn, "overloads"):
        return fn
    import numba

    return cast(Callable[..., Any], fn.compile(tuple(numba.typeof(a) for a in args)))  # type: ignore[attr-defined]
