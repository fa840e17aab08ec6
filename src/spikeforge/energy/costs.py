"""Cost models: per-operation energies (and times, where published) of one chip, each with its source.

The built-in models live in ``spikeforge/energy/costs.json``: ``cmos45`` (Horowitz 2014, fp32),
``cmos45_int8``, ``loihi`` (Davies et al. 2018, Table 2, pre-silicon), ``truenorth`` (Merolla et al.
2014), ``spinnaker`` (Sharp et al. 2012) and ``gpu_v100`` (NVIDIA V100 datasheet TDP / peak FP32).
Every constant is ``{"value", "unit", "citation", "caveat"}`` in SI units (J, J/B, s, B).

Add or change a chip in a few lines::

    from spikeforge.energy import CostModel, get_cost_model, load_cost_models
    mine = load_cost_models("my_chips.json")          # same format as costs.json
    faster = dataclasses.replace(get_cost_model("loihi"), e_synop=10e-12)
    chip = CostModel.from_dict({"name": "mychip", "description": "...", "event_driven": True,
                                "constants": {"e_synop": {"value": 1e-12, "unit": "J", "citation": "..."}, ...}})
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from importlib import resources
from typing import Any

__all__ = [
    "CostModel", "Constant", "load_cost_models", "get_cost_model", "list_cost_models", "ENERGY_FIELDS",
    "TIME_FIELDS",
]  # fmt: skip

#: Energy constants (J, or J/B for ``e_mem_byte``) and word sizes (B). ``e_synop`` is needed only by
#: event-driven models (a dense model runs spike layers as MACs).
ENERGY_FIELDS: dict[str, str] = {
    "e_synop": "J",
    "e_mac": "J",
    "e_add": "J",
    "e_neuron_active": "J",
    "e_neuron_inactive": "J",
    "e_spike": "J",
    "e_mem_byte": "J/B",
    "bytes_per_weight": "B",
    "bytes_per_state": "B",
}
#: Optional time constants (s). ``t_step`` is a fixed time per simulation step (barrier or real-time tick).
TIME_FIELDS: dict[str, str] = {
    "t_synop": "s",
    "t_mac": "s",
    "t_add": "s",
    "t_neuron_active": "s",
    "t_neuron_inactive": "s",
    "t_spike": "s",
    "t_step": "s",
}


@dataclass(frozen=True)
class Constant:
    """One published number: ``value`` in ``unit``, where it comes from, and what it leaves out."""

    value: float
    unit: str
    citation: str
    caveat: str = ""


@dataclass(frozen=True)
class CostModel:
    """Per-operation energies and times of one chip (SI units: J, J/B, s, B).

    Attributes:
        name, description: identifiers shown in reports.
        event_driven: True if the chip only works on nonzero spikes (SynOps); False for a dense device
            (a GPU runs spike tensors as MACs at every step).
        e_synop: J per synaptic operation (accumulate of one spike into one target).
        e_mac: J per multiply-accumulate of a layer fed non-binary values.
        e_add: J per pooling compare/add and per ANN activation.
        e_neuron_active / e_neuron_inactive: J per neuron update with / without input that step.
        e_spike: J per emitted spike (routing). e_mem_byte: J per byte of weight/state traffic.
        bytes_per_weight / bytes_per_state: word sizes on this chip.
        t_*: seconds per operation, None where not published; ``t_step`` seconds per time step.
        sources: the :class:`Constant` (citation, caveat) behind each field.
        caveats: statements that apply to every estimate on this chip.
    """

    name: str
    description: str
    event_driven: bool
    e_mac: float
    e_add: float
    e_neuron_active: float
    e_neuron_inactive: float
    e_spike: float
    e_mem_byte: float
    bytes_per_weight: float
    bytes_per_state: float
    e_synop: float | None = None
    t_synop: float | None = None
    t_mac: float | None = None
    t_add: float | None = None
    t_neuron_active: float | None = None
    t_neuron_inactive: float | None = None
    t_spike: float | None = None
    t_step: float | None = None
    sources: Mapping[str, Constant] = field(default_factory=dict, compare=False)
    caveats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("CostModel.name must be a non-empty string")
        if self.event_driven and self.e_synop is None:
            raise ValueError(f"cost model {self.name!r} is event-driven and needs e_synop (J per synaptic op)")
        for name in (*ENERGY_FIELDS, *TIME_FIELDS):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"cost model {self.name!r}: {name} must be a finite number >= 0, got {v!r}")

    @property
    def has_timing(self) -> bool:
        """True if at least one time constant is known (a latency estimate is possible)."""
        return any(getattr(self, t) is not None for t in TIME_FIELDS)

    def citation(self, name: str) -> str:
        """Citation of one constant ('' if the model was built without sources)."""
        src = self.sources.get(name)
        return src.citation if src else ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostModel:
        """Build from the JSON form: ``{"name", "description", "event_driven", "constants": {field:
        {"value", "unit", "citation", "caveat"?}}, "caveats": [...]}``. Units must match the field."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a cost model must be a dict, got {type(data).__name__}")
        missing = [k for k in ("name", "event_driven", "constants") if k not in data]
        if missing:
            raise ValueError(f"cost model {data.get('name', '?')!r} lacks keys {missing}")
        name = str(data["name"])
        consts = data["constants"]
        if not isinstance(consts, Mapping):
            raise TypeError(f"cost model {name!r}: 'constants' must be a dict of field -> constant")
        units = {**ENERGY_FIELDS, **TIME_FIELDS}
        unknown = sorted(set(consts) - set(units))
        if unknown:
            raise ValueError(f"cost model {name!r}: unknown constants {unknown}; valid: {', '.join(units)}")
        sources: dict[str, Constant] = {}
        for key, c in consts.items():
            if not isinstance(c, Mapping) or "value" not in c or "unit" not in c or not c.get("citation"):
                raise ValueError(
                    f"cost model {name!r}: constant {key!r} needs 'value', 'unit' and a non-empty 'citation'"
                )
            if c["unit"] != units[key]:
                raise ValueError(f"cost model {name!r}: {key} must be in {units[key]}, got unit {c['unit']!r}")
            sources[key] = Constant(float(c["value"]), str(c["unit"]), str(c["citation"]), str(c.get("caveat", "")))
        required = [k for k in ENERGY_FIELDS if k != "e_synop"]
        absent = [k for k in required if k not in sources]
        if absent:
            raise ValueError(
                f"cost model {name!r} lacks constants {absent} (all of {', '.join(ENERGY_FIELDS)} "
                "are needed; e_synop only for event-driven models)"
            )
        caveats = data.get("caveats", [])
        if isinstance(caveats, str) or not isinstance(caveats, (list, tuple)):
            raise TypeError(f"cost model {name!r}: 'caveats' must be a list of strings")
        event_driven = data["event_driven"]
        if not isinstance(event_driven, bool):
            raise TypeError(f"cost model {name!r}: 'event_driven' must be true or false")
        return cls(
            name=name,
            description=str(data.get("description", "")),
            event_driven=event_driven,
            sources=sources,
            caveats=tuple(str(c) for c in caveats),
            **{k: c.value for k, c in sources.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (inverse of :meth:`from_dict`)."""
        consts: dict[str, Any] = {}
        units = {**ENERGY_FIELDS, **TIME_FIELDS}
        for key, unit in units.items():
            v = getattr(self, key)
            if v is None:
                continue
            src = self.sources.get(key)
            entry: dict[str, Any] = {"value": v, "unit": unit, "citation": src.citation if src else "user value"}
            if src and src.caveat:
                entry["caveat"] = src.caveat
            consts[key] = entry
        return {
            "name": self.name,
            "description": self.description,
            "event_driven": self.event_driven,
            "constants": consts,
            "caveats": list(self.caveats),
        }


def _parse(doc: Any, origin: str) -> dict[str, CostModel]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("models"), list):
        raise ValueError(f"{origin}: expected a JSON object with a 'models' list (see spikeforge/energy/costs.json)")
    out: dict[str, CostModel] = {}
    for entry in doc["models"]:
        model = CostModel.from_dict(entry)
        if model.name in out:
            raise ValueError(f"{origin}: cost model {model.name!r} is defined twice")
        out[model.name] = model
    return out


def load_cost_models(path: str | os.PathLike[str] | None = None) -> dict[str, CostModel]:
    """Cost models from a JSON file in the ``costs.json`` format; ``None`` loads the built-in ones."""
    if path is None:
        text = resources.files("spikeforge.energy").joinpath("costs.json").read_text(encoding="utf-8")
        return _parse(json.loads(text), "spikeforge/energy/costs.json")
    with open(path, encoding="utf-8") as f:
        return _parse(json.load(f), str(path))


def list_cost_models() -> list[str]:
    """Names of the built-in cost models."""
    return sorted(load_cost_models())


def get_cost_model(name: str | CostModel, extra: Mapping[str, CostModel] | None = None) -> CostModel:
    """A cost model by name, from the built-ins and ``extra`` (e.g. ``load_cost_models(path)``).

    A :class:`CostModel` passes through. An unknown name raises ``ValueError`` listing the valid ones.
    """
    if isinstance(name, CostModel):
        return name
    models = load_cost_models()
    if extra:
        models.update(extra)
    if not isinstance(name, str) or name not in models:
        raise ValueError(f"unknown chip {name!r}; valid cost models: {', '.join(sorted(models))}")
    return models[name]
