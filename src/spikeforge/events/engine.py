r"""Streaming, event-driven execution of a trained :class:`~spikeforge.layers.SNNSequential` at batch 1.

The engine does work only for spikes: every input spike adds one weight column to its targets'
currents, neurons are updated only when they receive input or could cross threshold on their own,
and the leak between two updates of a neuron is applied lazily in closed form (see
:mod:`spikeforge.events._kernel` for the equations). Its spikes equal those of the dense model
(:class:`~spikeforge.layers.SNNSequential`, the oracle) except where a membrane lies within rounding
error of threshold. The engine keeps membranes and currents in float64 and the weights in the model's
float32/64; a Linear layer sums a step's weight rows in the weights' precision, in input order (a float32
model: float32, as the dense layer's matrix product does), then adds the sum to the float64 current; a Conv2d
layer adds its kernel taps' weights straight to float64 currents, in input order.

Supported networks (anything else raises ``ValueError`` / ``TypeError`` at construction)::

    SNNSequential( [Flatten] (Linear | Conv2d | DelayedLinear) [Flatten] neuron  ... )

* ``neuron``: a spiking LIF-family layer (``Neuron.capabilities.spiking`` and ``.lif_family``: IF, LIF,
  CubaLIF, RecurrentLIF) without threshold adaptation; its constants come from ``membrane_spec()``, the
  recurrent weight of a ``capabilities.recurrent`` layer from its ``w_rec``;
* one synaptic layer before every neuron layer; the network ends with a spiking neuron layer;
* :class:`~spikeforge.synapses.DelayedLinear` with integer delays (``layer.rounded()``), per axon or per
  synapse: a delay line per layer (:mod:`spikeforge.events._delay_line`) in the state, so a spike sent at
  step ``t`` reaches its targets at ``t + d`` also across calls; the steps before the stream are silent;
* ``nn.Conv2d`` with ``groups=1``, ``padding_mode="zeros"`` and integer padding; ``nn.Flatten`` with
  the default dims; layers may be wrapped in :class:`~spikeforge.layers.SeqToBatch`;
* biases are supported except before a layer with a synaptic current (CubaLIF: raises); a bias is a
  constant drive, integrated exactly in closed form;
* every reset mode and both ``input_scaling`` modes; scalar or per-neuron ``tau_mem``/``v_th``;
  the input gain must be >= 0 (``r >= 0``, ``c_mem > 0``).

Input: ``x_seq [T, 1, *input_shape]`` (spikes, event counts or analog values: entry ``a`` of input ``j``
adds ``a`` times column ``j``), a single step ``[1, *input_shape]``, or an event array
(:meth:`StreamingEngine.run_events`). The engine reports what it executed (:class:`EngineOps`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from spikeforge.events._checks import check_csr
from spikeforge.events._checks import check_engine_state
from spikeforge.events._checks import check_model_and_shape
from spikeforge.events._checks import check_state_arrays
from spikeforge.events._checks import state_shapes
from spikeforge.events._engine_types import EngineOps
from spikeforge.events._engine_types import EngineResult
from spikeforge.events._engine_types import EngineState
from spikeforge.events._engine_types import LayerOps
from spikeforge.events._engine_types import LazyOps
from spikeforge.events._kernel import entry_point
from spikeforge.events._kernel import get_advance
from spikeforge.events._kernel import numba_available
from spikeforge.events._layout import NEVER
from spikeforge.events._layout import Inputs
from spikeforge.events._layout import Outputs
from spikeforge.events._layout import Scratch
from spikeforge.events._layout import State
from spikeforge.events._network import build_network
from spikeforge.events.stream import MAX_ELEMENTS
from spikeforge.events.stream import check_dense_size
from spikeforge.events.stream import check_events
from spikeforge.events.stream import check_origin
from spikeforge.layers import SNNSequential

__all__ = ["StreamingEngine", "EngineState", "EngineOps", "LayerOps", "EngineResult", "CONV_WHOLE"]

#: Default ``conv_whole`` of :class:`StreamingEngine`.
CONV_WHOLE = 0.25


class StreamingEngine:
    """Event-driven batch-1 runtime of a trained SNN. See the module docstring for what is supported.

    Args:
        model: the trained :class:`~spikeforge.layers.SNNSequential` (its weights are copied once).
        input_shape: shape of one input sample without batch, e.g. ``(784,)`` or ``(2, 34, 34)``.
        use_numba: compile the update loop with Numba (default: when installed); False runs the same
            loop interpreted (only for small networks).
        conv_taps: run Conv2d layers by kernel taps (default; :mod:`spikeforge.events._conv_taps`); False runs
            them through generic per-input fan-out lists (slower; the same currents and spikes, kept as reference).
        conv_whole: a step whose inputs touch at least this fraction of a Conv2d layer's neurons (in ``(0, 1]``)
            updates every neuron of the layer in one pass instead of listing the touched and due ones (same
            arithmetic per neuron; the idle ones are then stepped at ``t`` rather than caught up later, which rounds
            differently); None: always list. Default :data:`CONV_WHOLE` (measured: ``benchmarks/streaming_conv.py``).
    """

    def __init__(
        self,
        model: SNNSequential,
        input_shape: tuple[int, ...],
        *,
        use_numba: bool | None = None,
        conv_taps: bool = True,
        conv_whole: float | None = CONV_WHOLE,
    ) -> None:
        check_model_and_shape(model, input_shape, "StreamingEngine")
        if conv_whole is not None and (
            isinstance(conv_whole, bool) or not isinstance(conv_whole, (int, float)) or not 0.0 < conv_whole <= 1.0
        ):
            raise ValueError(f"conv_whole must be a fraction in (0, 1] or None (never), got {conv_whole!r}")
        self.use_numba = numba_available() if use_numba is None else bool(use_numba)
        self._kernels = get_advance(self.use_numba)
        self.input_shape = input_shape
        net = build_network(model, input_shape, conv_taps=bool(conv_taps), conv_whole=conv_whole)
        self._lay, self._wts, self._mem, self._names = net.lay, net.wts, net.mem, net.names
        self.output_shape = net.output_shape
        n_out = self._lay.n_out
        total = int(n_out.sum())
        n_pos = max(1, int((self._lay.geo[:, 4] * self._lay.geo[:, 5]).max()))  # output positions of a conv layer
        self._scratch = Scratch(
            cur=np.zeros(total),
            rcur=np.zeros(total),
            flag=np.zeros(total, dtype=np.uint8),
            tlist=np.zeros(total, dtype=np.int64),
            spk=np.zeros(total, dtype=np.int64),
            spk_cnt=np.zeros(len(n_out), dtype=np.int64),
            dj=np.zeros(int(self._lay.n_in.max()), dtype=np.int64),
            da=np.zeros(int(self._lay.n_in.max())),
            acc=np.zeros(int(n_out.max()), dtype=self._wts.wt.dtype),
            pflag=np.zeros(n_pos, dtype=np.uint8),
            plist=np.zeros(n_pos, dtype=np.int64),
            cix=np.zeros(total, dtype=np.int64),
        )
        self._state0: EngineState | None = None
        self._advance: Callable[..., None] | None = None  # the loop resolved for this engine's argument types
        self._scan: dict[np.dtype, Callable[..., int]] = {}  # the input scan, per input dtype
        self._scan_state: Callable[..., int] | None = None
        self._shapes = state_shapes(self._lay)
        self._n_in = int(np.prod(input_shape))
        self._sample_shape = (1, *input_shape)  # x_seq.shape[1:]
        # output columns: record=False writes the last layer at column 0, record=True every layer side by side
        self._cols = np.concatenate([[0], np.cumsum(n_out)]).astype(np.int64)
        dcol = np.full(len(n_out), -1, dtype=np.int64)
        dcol[-1] = 0
        self._dcol = {False: dcol, True: self._cols[:-1].copy()}
        self._width = {False: int(n_out[-1]), True: int(self._cols[-1])}

    # ---- state --------------------------------------------------------------------------------
    def init_state(self) -> EngineState:
        """Every neuron at its initial state (``v = v_rest``, IF at 0; synaptic current 0) before step 0."""
        if self._state0 is None:
            n_out, n_layers = self._lay.n_out, len(self._lay.n_out)
            total = int(n_out.sum())
            v = np.repeat(self._lay.v_rest, n_out).astype(np.float64)
            due = np.empty(total, dtype=np.int64)
            layer_of = np.repeat(np.arange(n_layers, dtype=np.int64), n_out)
            # spontaneous firing (bias drive, v_rest above threshold) is scheduled here
            self._kernels.init_due(self._lay, self._mem, layer_of, v, due)
            min_due = np.array(
                [due[o : o + n].min() if n else NEVER for o, n in zip(self._lay.off, n_out)], dtype=np.int64
            )
            self._state0 = EngineState(
                0,
                v,
                np.zeros(total),
                np.full(total, -1, dtype=np.int64),
                due,
                min_due,
                np.zeros(total, dtype=np.int64),
                np.zeros(n_layers, dtype=np.int64),
                np.zeros((n_layers, 4), dtype=np.int64),
                *self._rings(),
            )
        s0 = self._state0  # a template built once; every stream gets its own copies
        return EngineState(
            0,
            s0.v.copy(),
            s0.i.copy(),
            s0.last.copy(),
            s0.due.copy(),
            s0.min_due.copy(),
            s0.prev_sp.copy(),
            s0.prev_cnt.copy(),
            s0.ops.copy(),
            s0.hval.copy(),
            s0.hidx.copy(),
            s0.hflag.copy(),
            s0.hcnt.copy(),
        )

    def _rings(self) -> tuple[np.ndarray, ...]:
        """Empty delay lines: ``(hval, hidx, hflag, hcnt)`` for every DelayedLinear layer's ``D + 1`` slots."""
        lay = self._lay
        slots = np.where(lay.delay >= 0, lay.delay + 1, 0)
        size = int((slots * lay.n_in).sum())
        return np.zeros(size), np.zeros(size, np.int64), np.zeros(size, np.uint8), np.zeros(int(slots.sum()), np.int64)

    # ---- running ------------------------------------------------------------------------------
    @staticmethod
    def _state_arrays(state: EngineState) -> State:
        s = state
        return State(s.v, s.i, s.last, s.due, s.min_due, s.prev_sp, s.prev_cnt, s.hval, s.hidx, s.hflag, s.hcnt)

    def _check_state(self, state: EngineState, values: bool) -> None:
        """A carried state's arrays (types, shapes), then one compiled pass over what the loop indexes memory
        with and, with ``values``, the hand-edit checks; a failed pass reruns the vectorised checks for the
        message (see :mod:`spikeforge.events._checks`)."""
        check_state_arrays(state, self._shapes)
        args = (int(state.t), values, state.v, state.i, state.last, state.prev_sp, state.prev_cnt, state.hidx,
                state.hcnt, state.hval, self._lay)  # fmt: skip
        if not self.use_numba:
            check_engine_state(state, self._lay, values)
            return
        if self._scan_state is None:
            self._scan_state = entry_point(self._kernels.scan_state, args)
        code = self._scan_state(*args)
        if code:
            check_engine_state(state, self._lay, values)
            raise ValueError(f"state failed check {code}; pass state=None or a state from this engine's init_state()")

    def run_csr(
        self,
        in_ptr: np.ndarray,
        in_idx: np.ndarray,
        in_val: np.ndarray,
        state: EngineState | None = None,
        *,
        record: bool = False,
    ) -> EngineResult:
        """Run ``len(in_ptr) - 1`` steps; step ``k``'s inputs are ``in_idx[in_ptr[k]:in_ptr[k+1]]`` (flat indices
        into ``input_shape``) with values ``in_val``. The lowest-level entry point; see :meth:`run`.

        Everything is checked before the compiled loop runs (raising ``ValueError``/``TypeError`` with the fix):
        ``in_ptr`` non-decreasing integer offsets with ``0 <= in_ptr[0]`` and ``in_ptr[-1] <= len(in_idx)``,
        integer indices in range, finite values, and a ``state`` that belongs to this engine."""
        in_ptr, in_idx, in_val = check_csr(in_ptr, in_idx, in_val, int(np.prod(self.input_shape)))
        return self._run(in_ptr, in_idx, in_val, state, bool(record))

    def _run(
        self,
        in_ptr: np.ndarray,
        in_idx: np.ndarray,
        in_val: np.ndarray,
        state: EngineState | None,
        record: bool,
        values: bool = True,
        single: bool = False,
    ) -> EngineResult:
        """:meth:`run_csr` on arrays already checked (int64 / float64, contiguous, aligned, indices in range). A
        given state is always checked for what the loop indexes with; ``values``: also for hand-edited values
        (skipped by :meth:`step`, the per-step path); ``single``: one step, spikes ``[1, *output_shape]``."""
        if state is None:
            state = self.init_state()
        elif not isinstance(state, EngineState):
            raise TypeError(f"state must be an EngineState from init_state(), got {type(state).__name__}")
        else:
            self._check_state(state, values)
        n_steps = len(in_ptr) - 1
        ops0 = state.ops.copy()
        width = self._width[record]
        # the spikes as the returned tensor's own memory: [T, 1, *output_shape] (record: [T, sum of N_l])
        shape = (n_steps, width) if record else (1, *self.output_shape) if single else (n_steps, 1, *self.output_shape)
        out = np.zeros(shape, dtype=np.float32)
        args = (
            n_steps,
            state.t,
            Inputs(in_ptr, in_idx, in_val),
            self._lay,
            self._wts,
            self._mem,
            self._state_arrays(state),
            self._scratch,
            Outputs(out.reshape(n_steps, width), self._dcol[record], state.ops),
        )
        if self._advance is None:
            self._advance = entry_point(self._kernels.advance, args)
        self._advance(*args)
        state.t += n_steps
        spikes = torch.from_numpy(out)
        layer_spikes: tuple[Tensor, ...] = ()
        if record:
            cols = self._cols.tolist()
            layer_spikes = tuple(spikes[:, cols[k] : cols[k + 1]].unsqueeze(1) for k in range(len(self._names)))
            spikes = layer_spikes[-1].reshape(n_steps, 1, *self.output_shape)
        return EngineResult(spikes, state, LazyOps(self._names, state.ops - ops0), layer_spikes)

    def run(self, x_seq: Tensor, state: EngineState | None = None, *, record: bool = False) -> EngineResult:
        """Run ``x_seq [T, 1, *input_shape]`` one step after another; returns spikes ``[T, 1, *output_shape]``.

        ``record=True`` also returns every neuron layer's spikes ``[T, 1, N_l]`` (flattened) in ``layer_spikes``.
        """
        return self._run(*self._csr(x_seq), state, bool(record))

    def _csr(self, x_seq: Tensor, single: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The nonzeros of ``x_seq [T, 1, *input_shape]`` (``single``: one step ``[1, *input_shape]``) as
        ``(in_ptr, in_idx, in_val)`` (checked: finite)."""
        name, dims = ("x_t", "[1, *input_shape]") if single else ("x_seq", "[T, 1, *input_shape]")
        if not isinstance(x_seq, Tensor) or not x_seq.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor {dims}")
        shape = x_seq.shape
        if (shape if single else shape[1:]) != self._sample_shape:
            raise ValueError(
                f"{name} must be {dims.replace('input_shape', str(self.input_shape))} (batch 1), got "
                f"{tuple(shape)}; the engine streams one sample: run samples one by one"
            )
        flat = x_seq.detach() if x_seq.requires_grad else x_seq
        if not flat.is_cpu:
            flat = flat.cpu()
        if flat.dtype != torch.float64 and (flat.dtype != torch.float32 or self._n_in % 2):
            flat = flat.to(torch.float64)  # half / bfloat16 (exact), or float32 rows that do not span whole words
        xn = np.ascontiguousarray(flat.numpy().reshape(1 if single else shape[0], self._n_in))
        ptr = np.empty(xn.shape[0] + 1, dtype=np.int64)
        idx, vals = np.empty(xn.size, dtype=np.int64), np.empty(xn.size, dtype=np.float64)
        args = (xn, xn.view(np.uint64), ptr, idx, vals)
        scan = self._scan.get(xn.dtype)
        if not (args[1].flags.aligned and xn.flags.writeable):
            scan = self._kernels.dense_csr  # an unusual view: Numba's own dispatch
        elif scan is None:
            scan = self._scan[xn.dtype] = entry_point(self._kernels.dense_csr, args)
        nnz = scan(*args)  # nonzeros per step, NaN/inf check
        if nnz < 0:
            raise ValueError("x_seq contains NaN or inf")
        return ptr, idx[:nnz], vals[:nnz]

    def step(self, x_t: Tensor, state: EngineState | None = None) -> tuple[Tensor, EngineState]:
        """One time step: ``x_t [1, *input_shape]`` -> ``(spikes [1, *output_shape], state)``."""
        res = self._run(*self._csr(x_t, single=True), state, False, values=False, single=True)
        return res.spikes, res.state

    def run_events(
        self,
        events: np.ndarray,
        sensor_size: tuple[int, int, int],
        dt: int,
        *,
        num_steps: int | None = None,
        t0: int = 0,
        state: EngineState | None = None,
        record: bool = False,
        max_elements: int = MAX_ELEMENTS,
    ) -> EngineResult:
        """Stream an event array (see :mod:`spikeforge.events.stream`) without building a dense tensor.

        Event ``(x, y, t, p)`` is input ``(p, y, x)`` of ``input_shape = (P, H, W)`` (or its flat index for a
        flat input of ``P * H * W``) at step ``(t - t0) // dt``; repeated events in a step add up.
        ``max_elements`` bounds the output (``num_steps`` x output width), as in
        :func:`~spikeforge.events.events_to_dense`.
        """
        check_events(events, sensor_size)
        w, h, npol = (int(s) for s in sensor_size)
        if int(np.prod(self.input_shape)) != npol * h * w:
            raise ValueError(f"sensor_size {sensor_size} has {npol * h * w} inputs, the network {self.input_shape}")
        if isinstance(dt, bool) or not isinstance(dt, int) or dt < 1:
            raise ValueError(f"dt must be a positive int (microseconds), got {dt!r}")
        t0 = check_origin(events["t"], t0, "t0")
        steps = (events["t"] - t0) // dt
        inferred = num_steps is None
        if num_steps is None:
            num_steps = int(steps[-1]) + 1 if events.size else 0
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
            raise ValueError(f"num_steps must be a non-negative int, got {num_steps!r}")
        check_dense_size(
            num_steps,
            self._width[bool(record)],
            max_elements,
            f"num_steps (inferred from the last event at t={int(events['t'][-1])}, t0={t0}, dt={dt})"
            if inferred and events.size
            else "num_steps",
            "pass num_steps explicitly and drop late events (events[events['t'] < t_end]), or use a larger dt",
        )
        if events.size and steps[-1] >= num_steps:
            raise ValueError(f"events run past num_steps={num_steps}; raise num_steps")
        flat = (events["p"].astype(np.int64) * h + events["y"].astype(np.int64)) * w + events["x"].astype(np.int64)
        ptr = (
            np.concatenate([[0], np.cumsum(np.bincount(steps, minlength=num_steps))])
            if num_steps
            else np.zeros(1, np.int64)
        )
        return self.run_csr(ptr, flat, np.ones(flat.size), state, record=record)
