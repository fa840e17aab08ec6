"""``spikeforge report RUN``: the HTML page's content, escaping, refusals and errors, and the page in a real
headless browser (Debian's chromium driven by selenium through chromium-driver; skipped without them)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from spikeforge import cli
from spikeforge.energy import list_cost_models

# 1 epoch, tiny network, few steps: a few seconds on one core (as in tests/test_cli.py).
TINY = ["--epochs", "1", "--hidden", "32", "--time-steps", "4", "--batch-size", "64", "--seed", "3"]
PNGS = ["learning_curves.png", "raster.png", "membrane.png", "firing_rates.png"]
SECTIONS = {"summary": "Summary", "plots": "Plots", "energy": "Energy per inference", "config": "Configuration"}
FEW = ["--hardware", "loihi,cmos45", "--samples", "32"]  # a quicker energy table where the chips do not matter


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def result_of(stdout: str) -> Any:
    envelope = json.loads(stdout)
    assert envelope == {"command": "report", "ok": True, "result": envelope["result"]}
    return envelope["result"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny training run (read-only: tests that change it work on a copy)."""
    out_dir = tmp_path_factory.mktemp("report") / "run"
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        code = cli.main(["train", *TINY, "--out", str(out_dir), "--quiet"])
    finally:
        sys.stdout, sys.stderr = old
    assert code == 0
    return out_dir


@pytest.fixture(scope="module")
def report(trained: Path) -> tuple[dict[str, Any], str]:
    """The default report of the run (every built-in chip): the --json result and the page."""
    old = sys.stdout
    sys.stdout = captured = io.StringIO()
    try:
        code = cli.main(["report", str(trained), "--json"])
    finally:
        sys.stdout = old
    assert code == 0
    result = result_of(captured.getvalue())
    return result, Path(result["report"]).read_text(encoding="utf-8")


@pytest.fixture
def copy(trained: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(trained, dest, ignore=shutil.ignore_patterns("report.html"))
    return dest


def _img_sources(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


# ---- the page --------------------------------------------------------------------------------------


def test_report_json_names_the_page_its_plots_and_chips(trained: Path, report: tuple[dict[str, Any], str]) -> None:
    result, page = report
    assert result["report"] == str(trained / "report.html") and result["run_dir"] == str(trained)
    assert result["plots"] == PNGS and result["missing_plots"] == []
    assert result["hardware"] == list_cost_models()  # every built-in chip by default
    assert result["bytes"] == len(page.encode("utf-8"))


def test_report_is_self_contained(trained: Path, report: tuple[dict[str, Any], str]) -> None:
    _, page = report
    sources = _img_sources(page)
    assert len(sources) == len(PNGS) == page.count("<img ")
    for name, src in zip(PNGS, sources):  # each plot embedded byte for byte, in page order
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]) == (trained / name).read_bytes()
    lowered = page.lower()
    for external in ("<script", "<link", "<iframe", "http://", "https://", "url(", "@import"):
        assert external not in lowered, external
    assert "default-src 'none'; img-src data:" in page  # the CSP blocks any request that slipped in


def test_report_shows_summary_energy_and_config(trained: Path, report: tuple[dict[str, Any], str]) -> None:
    _, page = report
    for anchor, title in SECTIONS.items():
        assert re.search(rf'<section id="{anchor}">\s*<h2>{title}', page), anchor
    metrics = json.loads((trained / "metrics.json").read_text())
    best = metrics["history"][metrics["summary"]["best_epoch"] - 1]
    for key in ("test_acc", "val_acc"):
        assert f"<td>{100 * best[key]:.2f} %</td>" in page
    for layer, rate in best["firing_rates"].items():
        assert f"firing rate {layer} (validation split, reported epoch)" in page
        assert f"{rate:.4f} spikes/neuron/step" in page
    assert f"<td>{best['spikes_per_sample']:.1f}</td>" in page
    energy_table = page[page.index('id="energy-table"') :]
    for chip in list_cost_models():
        assert f"<td>energy per inference on {chip}</td>" in page and f"<td>{chip}</td>" in energy_table
    config = json.loads((trained / "config.json").read_text())
    assert "<td>hidden</td><td>[32]</td>" in page and "<td>time_steps</td><td>4</td>" in page
    assert f"<td>surrogate</td><td>{config['surrogate']}</td>" in page


def test_text_output_names_the_report(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    code, stdout, err = run(capsys, "report", trained, "--out", out, *FEW)
    assert code == 0 and err == ""
    assert stdout.startswith("Run report\n") and str(out) in stdout and "loihi, cmos45" in stdout
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left


def test_every_string_from_the_run_is_escaped(trained: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run_dir = tmp_path / 'run<b id="x">&'
    shutil.copytree(trained, run_dir, ignore=shutil.ignore_patterns("report.html"))
    config = json.loads((run_dir / "config.json").read_text())
    config["data_dir"] = "</td><script>alert(1)</script>"
    config["<i>key"] = 'say "hi" & <b>'
    (run_dir / "config.json").write_text(json.dumps(config))
    shutil.copy(run_dir / "raster.png", run_dir / "extra <img src=x>.png")
    code, out, _ = run(capsys, "report", run_dir, "--json", *FEW)
    assert code == 0
    page = (run_dir / "report.html").read_text()
    for raw in ("<script", "<b ", "<b>", "<i>", "<img src=x>"):
        assert raw not in page, raw
    assert "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<td>&lt;i&gt;key</td><td>say &quot;hi&quot; &amp; &lt;b&gt;</td>" in page
    assert "run&lt;b id=&quot;x&quot;&gt;&amp;" in page  # the run's name in the title and header
    assert result_of(out)["plots"] == [*PNGS, "extra <img src=x>.png"]  # other PNGs follow the known ones
    assert "<code>extra &lt;img src=x&gt;.png</code>" in page and len(_img_sources(page)) == 5


def test_missing_or_broken_plots_are_named_on_the_page(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (copy / "raster.png").unlink()
    (copy / "membrane.png").write_text("not an image")
    code, out, _ = run(capsys, "report", copy, "--json", *FEW)
    assert code == 0
    result = result_of(out)
    assert result["plots"] == ["learning_curves.png", "firing_rates.png"]
    assert result["missing_plots"] == ["raster.png", "membrane.png"]
    page = (copy / "report.html").read_text()
    assert "raster.png is missing from the run directory" in page and "membrane.png is not a PNG file" in page
    assert len(_img_sources(page)) == 2
    code, out, _ = run(capsys, "report", copy, *FEW)
    assert code == 0 and "missing plots  raster.png, membrane.png" in out


# ---- refusals and errors ---------------------------------------------------------------------------


def test_refuses_to_overwrite_anything_but_a_report(trained: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>")
    code, out, err = run(capsys, "report", trained, "--out", mine, *FEW)
    assert code == 1 and out == "" and "is not a spikeforge report" in err and len(err.splitlines()) == 1
    assert mine.read_text() == "<p>my notes</p>"
    ours = tmp_path / "ours.html"
    for _ in range(2):  # a report is replaced by the next one
        assert run(capsys, "report", trained, "--out", ours, *FEW)[0] == 0
    code, _, err = run(capsys, "report", trained, "--out", tmp_path, *FEW)
    assert code == 1 and "is a directory" in err
    code, _, err = run(capsys, "report", trained, "--out", tmp_path / "no" / "r.html", *FEW)
    assert code == 1 and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.html", "ours.html"]


def _no_metrics(d: Path) -> None:
    (d / "metrics.json").unlink()


def _bad_metrics(d: Path) -> None:
    (d / "metrics.json").write_text("{not json")


def _no_history(d: Path) -> None:
    (d / "metrics.json").write_text('{"history": [], "summary": null}')


def _no_checkpoint(d: Path) -> None:
    (d / "best.pt").unlink()


def _no_config(d: Path) -> None:
    (d / "config.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_no_metrics, "has no metrics.json"),
        (_bad_metrics, "metrics.json' is not valid JSON"),
        (_no_history, "holds no finished epoch"),
        (_no_checkpoint, "has no best.pt"),
        (_no_config, "has no config.json"),
    ],
)
def test_an_incomplete_run_dir_is_a_one_line_error(damage: Any, message: str, copy: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    damage(copy)
    code, out, err = run(capsys, "report", copy, "--json", *FEW)
    envelope = json.loads(out)
    assert code == 1 and envelope["ok"] is False and envelope["exit_code"] == 1
    assert message in envelope["error"] and err.splitlines() == [f"spikeforge report: error: {envelope['error']}"]
    assert not (copy / "report.html").exists()


def test_not_a_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "report", tmp_path / "nope")
    assert code == 1 and "does not exist" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "report", tmp_path / "file")
    assert code == 1 and "is not a directory" in err
    code, _, err = run(capsys, "report", tmp_path)
    assert code == 1 and "has no metrics.json" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--hardware", "loihi,nope"], "--hardware: unknown chip 'nope'"), (["--samples", "0"], "--samples must be")],
)
def test_bad_options_are_usage_errors(option: list[str], message: str, trained: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code, out, err = run(capsys, "report", trained, "--out", tmp_path / "r.html", *option)
    assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_an_unfinished_run_is_reported_from_its_history(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["summary"] = None  # as written after each epoch, before training ends
    (copy / "metrics.json").write_text(json.dumps(metrics))
    assert run(capsys, "report", copy, *FEW)[0] == 0
    page = (copy / "report.html").read_text()
    assert "the run has not finished" in page and f"<td>{100 * metrics['history'][0]['test_acc']:.2f} %</td>" in page


# ---- in a real browser -----------------------------------------------------------------------------


def _browser() -> Any:
    """A headless Debian chromium driven through chromium-driver, or skip saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver (Debian's browser and its driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, read with get_log
    return webdriver.Chrome(options=options, service=Service(driver))


def _load(browser: Any, page: Path) -> dict[str, Any]:
    """Open ``page`` and return its console log, images, section titles and requests made."""
    browser.get(page.resolve().as_uri())
    state = browser.execute_script(
        "return {ready: document.readyState,"
        " images: Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]),"
        " sections: Array.from(document.querySelectorAll('section')).map(s => [s.id, s.querySelector('h2').textContent,"
        "   s.getBoundingClientRect().height]),"
        " requests: performance.getEntriesByType('resource').map(e => e.name)}"
    )
    state["log"] = browser.get_log("browser")
    return state


def test_report_in_headless_chromium(trained: Path, report: tuple[dict[str, Any], str], copy: Path,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    browser = _browser()
    try:
        browser.set_page_load_timeout(60)
        full = _load(browser, trained / "report.html")
        assert full["ready"] == "complete" and full["log"] == [] and full["requests"] == []
        assert len(full["images"]) == len(PNGS)
        for alt, complete, width, height in full["images"]:
            assert complete and width > 200 and height > 200, alt  # every figure decoded and shown
        assert [anchor for anchor, _, _ in full["sections"]] == list(SECTIONS)
        for (_, title, height), expected in zip(full["sections"], SECTIONS.values()):
            assert title.startswith(expected) and height > 0
        assert browser.find_element("id", "energy-table").is_displayed()
        # A run with a missing and a broken plot: the page still loads cleanly and shows the others.
        (copy / "raster.png").unlink()
        (copy / "membrane.png").write_text("not an image")
        assert run(capsys, "report", copy, *FEW)[0] == 0
        partial = _load(browser, copy / "report.html")
        assert partial["log"] == [] and partial["requests"] == []
        assert [w > 0 for _, _, w, _ in partial["images"]] == [True, True]
        # The checks can fail with this browser: an external image and stylesheet are blocked and logged.
        bad = tmp_path / "bad.html"
        external = '<img src="https://example.org/x.png"><link rel="stylesheet" href="x.css">'
        bad.write_text(report[1].replace("</body>", external + "</body>"))
        broken = _load(browser, bad)
        assert len(broken["requests"]) == 2 and broken["images"][-1][2] == 0
        assert sum(entry["level"] == "SEVERE" for entry in broken["log"]) >= 2
    finally:
        browser.quit()


def test_help_examples_parse(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "--help")
    assert code == 0 and "RUN/report.html" in out
    examples = [line.split() for line in out.split("example:")[1].splitlines() if line.strip()]
    assert len(examples) == 2
    for argv in examples:
        args = cli.build_parser().parse_args(argv[1:])
        assert args.command == "report" and args.run.name == "yy"
