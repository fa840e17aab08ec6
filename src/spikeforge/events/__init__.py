"""Event-driven execution: event streams, spike-sparse layers and a streaming engine.

* :mod:`~spikeforge.events.stream`: Tonic-compatible ``(x, y, t, p)`` event arrays, conversion to and
  from dense ``[T, P, H, W]`` spike tensors, binning to frames.
* :mod:`~spikeforge.events.sparse`: :class:`SparseLinear` / :class:`SparseConv2d`, drop-in layers whose
  forward and weight gradient touch only the weights of active inputs.
* :mod:`~spikeforge.events.engine`: :class:`StreamingEngine`, batch-1 event-driven inference with lazy
  leak; its spikes equal the dense :class:`~spikeforge.layers.SNNSequential` (the oracle).
* :mod:`~spikeforge.events.pipeline`: :class:`StreamingPipeline`, a whole conv classifier (BatchNorm folded,
  max pooling of spikes, LI readout) run event-driven over engine segments.
* :mod:`~spikeforge.events.emulate`: an event-camera emulator (frames, saccades over a still image, or a
  video file in, event arrays out).
* :mod:`~spikeforge.events.formats`: recordings on disk (N-MNIST ``.bin``, AEDAT4, Prophesee EVT 2.0/3.0, SHD/SSC
  HDF5) read into event arrays: :func:`read_events`, :func:`read_shd`.
* :mod:`~spikeforge.events.transforms` / :mod:`~spikeforge.events.transforms_frames`: crop, downsample, denoise,
  refractory filter; frames by event count, time surfaces.
"""

from spikeforge.events.emulate import EmulatorParams
from spikeforge.events.emulate import EmulatorState
from spikeforge.events.emulate import emulate_frames
from spikeforge.events.emulate import emulator_init
from spikeforge.events.emulate import emulator_step
from spikeforge.events.emulate_inputs import emulate_saccades
from spikeforge.events.emulate_inputs import emulate_video
from spikeforge.events.engine import EngineOps
from spikeforge.events.engine import EngineResult
from spikeforge.events.engine import EngineState
from spikeforge.events.engine import LayerOps
from spikeforge.events.engine import StreamingEngine
from spikeforge.events.formats import FormatError
from spikeforge.events.formats import read_events
from spikeforge.events.formats import read_shd
from spikeforge.events.formats import shd_to_events
from spikeforge.events.pipeline import PipelineResult
from spikeforge.events.pipeline import StageOps
from spikeforge.events.pipeline import StreamingPipeline
from spikeforge.events.sparse import CONV2D_CROSSOVER
from spikeforge.events.sparse import LINEAR_CROSSOVER
from spikeforge.events.sparse import SparseConv2d
from spikeforge.events.sparse import SparseLinear
from spikeforge.events.sparse import sparse_conv2d
from spikeforge.events.sparse import sparse_linear
from spikeforge.events.sparse import spike_density
from spikeforge.events.stream import EVENT_DTYPE
from spikeforge.events.stream import check_events
from spikeforge.events.stream import dense_to_events
from spikeforge.events.stream import events_to_dense
from spikeforge.events.stream import make_events
from spikeforge.events.stream import to_frames
from spikeforge.events.transforms import center_crop
from spikeforge.events.transforms import crop
from spikeforge.events.transforms import denoise
from spikeforge.events.transforms import downsample
from spikeforge.events.transforms import refractory
from spikeforge.events.transforms_frames import time_surfaces
from spikeforge.events.transforms_frames import to_count_frames

__all__ = [
    "EVENT_DTYPE", "make_events", "check_events", "events_to_dense", "dense_to_events", "to_frames",
    "LINEAR_CROSSOVER", "CONV2D_CROSSOVER", "spike_density", "sparse_linear", "sparse_conv2d", "SparseLinear",
    "SparseConv2d", "StreamingEngine", "EngineState", "EngineResult", "EngineOps", "LayerOps",
    "StreamingPipeline", "PipelineResult", "StageOps",
    "EmulatorParams", "EmulatorState", "emulator_init", "emulator_step", "emulate_frames", "emulate_saccades",
    "emulate_video",
    "read_events", "read_shd", "shd_to_events", "FormatError", "crop", "center_crop", "downsample", "denoise",
    "refractory", "to_count_frames", "time_surfaces",
]  # fmt: skip
