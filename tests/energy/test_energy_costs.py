"""Cost models: the published constants, citations on every constant, loading, extending, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from spikeforge.energy import ENERGY_FIELDS, CostModel, get_cost_model, list_cost_models, load_cost_models


def _minimal(name: str = "mychip") -> dict[str, Any]:
    consts = {k: {"value": 1e-12, "unit": u, "citation": "test"} for k, u in ENERGY_FIELDS.items()}
    return {"name": name, "description": "d", "event_driven": True, "constants": consts}


def test_builtin_models_and_published_values() -> None:
    assert {"cmos45", "cmos45_int8", "loihi", "truenorth", "spinnaker", "gpu_v100"} <= set(list_cost_models())
    h = get_cost_model("cmos45")
    assert h.e_mac == pytest.approx(3.7e-12 + 0.9e-12) and h.e_synop == pytest.approx(0.9e-12)
    assert h.e_mem_byte == pytest.approx(10e-12 / 8)  # 64-bit read of an 8 KB SRAM
    assert get_cost_model("cmos45_int8").e_mac == pytest.approx(0.2e-12 + 0.03e-12)
    lo = get_cost_model("loihi")
    assert (lo.e_synop, lo.t_synop) == pytest.approx((23.6e-12, 3.5e-9))
    assert (lo.e_neuron_active, lo.e_neuron_inactive, lo.e_spike) == pytest.approx((81e-12, 52e-12, 1.7e-12))
    assert get_cost_model("truenorth").e_synop == pytest.approx(26e-12)
    assert get_cost_model("spinnaker").e_synop == pytest.approx(43e-9)
    gpu = get_cost_model("gpu_v100")
    assert not gpu.event_driven
    assert gpu.e_mac == pytest.approx(300.0 / (15.7e12 / 2), rel=1e-3)  # TDP / peak MAC rate


def test_every_constant_has_a_citation_and_unit() -> None:
    for name, model in load_cost_models().items():
        assert model.caveats, name
        for key in ENERGY_FIELDS:
            if getattr(model, key) is None:
                continue
            src = model.sources[key]
            assert src.citation and src.unit == ENERGY_FIELDS[key], (name, key)


def test_round_trip_and_user_file(tmp_path: Path) -> None:
    for model in load_cost_models().values():
        assert CostModel.from_dict(model.to_dict()) == model
    doc = {"models": [_minimal("a"), _minimal("b")]}
    path = tmp_path / "chips.json"
    path.write_text(json.dumps(doc))
    mine = load_cost_models(path)
    assert sorted(mine) == ["a", "b"]
    assert get_cost_model("a", mine).e_synop == 1e-12
    faster = dataclasses.replace(get_cost_model("loihi"), e_synop=1e-12)
    assert faster.e_synop == 1e-12 and faster.e_mac == get_cost_model("loihi").e_mac


def test_unknown_chip_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        get_cost_model("loihi3")
    for name in list_cost_models():
        assert name in str(err.value)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d["constants"]["e_mac"].update(unit="pJ"), "must be in J"),
        (lambda d: d["constants"].pop("e_add"), "lacks constants"),
        (lambda d: d["constants"].update(e_foo={"value": 1, "unit": "J", "citation": "x"}), "unknown constants"),
        (lambda d: d["constants"]["e_mac"].update(value=-1.0), ">= 0"),
        (lambda d: d["constants"]["e_mac"].update(value=float("nan")), ">= 0"),
        (lambda d: d["constants"].pop("e_synop"), "needs e_synop"),
        (lambda d: d["constants"]["e_mac"].update(citation=""), "citation"),
        (lambda d: d.pop("event_driven"), "lacks keys"),
    ],
)
def test_bad_cost_model_dicts(mutate: Any, match: str) -> None:
    d = _minimal()
    mutate(d)
    with pytest.raises(ValueError, match=match):
        CostModel.from_dict(d)


def test_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"chips": []}))
    with pytest.raises(ValueError, match="models"):
        load_cost_models(path)
    path.write_text(json.dumps({"models": [_minimal("x"), _minimal("x")]}))
    with pytest.raises(ValueError, match="twice"):
        load_cost_models(path)
    with pytest.raises(TypeError, match="dict"):
        CostModel.from_dict([1, 2])  # type: ignore[arg-type]
    d = _minimal()
    d["event_driven"] = "yes"
    with pytest.raises(TypeError, match="event_driven"):
        CostModel.from_dict(d)
