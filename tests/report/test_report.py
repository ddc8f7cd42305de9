"""The report from a real tiny pipeline run: every section present with real figures, numbers taken from
the run's files, missing data said out loud, text escaped, nothing half-written."""

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.errors import WorkbenchError
from workbench.report import build_report
from workbench.report.build import PARTS
from workbench.report.collect import agreement, spearman_rows

runner = CliRunner()


class _Page(HTMLParser):
    """Sections (id -> data-status), images and text of an HTML page."""

    def __init__(self):
        super().__init__()
        self.sections, self.images, self.text, self.scripts = {}, [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-status" in a:
            self.sections[a["id"]] = a["data-status"]
        if tag == "img":
            self.images.append(a["src"])
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


def test_pipeline_report_has_every_section_with_real_data(tiny_run):
    _, report, summary = tiny_run
    assert Path(summary["report"]) == report / "index.html"
    assert all(s["status"] == "ran" for s in summary["teachers"]["gazenet"].values())
    page = _parse(report / "index.html")
    assert {f"gazenet-{p}" for p in PARTS} | {"provenance"} <= set(page.sections)
    assert all(status == "ok" for status in page.sections.values()), page.sections
    # Every image is a file in the report folder (relative, no network), a real PNG.
    assert len(page.images) >= 8
    for src in page.images:
        assert not src.startswith(("http:", "https:", "/", "file:")), src
        data = (report / src).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    text = " ".join(page.text)
    for model in ("teacher", "pruned", "student", "control", "int8"):
        assert f'data-model="{model}"' in (report / "index.html").read_text()
    assert "workbench run" in text and "torch" in text and "onnxruntime" in text and "captum" in text


def test_report_numbers_come_from_the_run(tiny_run):
    run, report, _ = tiny_run
    doc = json.loads((report / "report.json").read_text())
    t = doc["teachers"][0]
    cards = {c["name"]: c for c in t["models"]}
    metrics = json.loads((run / "gazenet" / "train" / "metrics.json").read_text())
    assert cards["teacher"]["value"] == metrics["best"]
    prof = json.loads((run / "gazenet" / "profile" / "pruned.json").read_text())
    assert cards["pruned"]["macs"] == prof["profile"]["macs"] < cards["teacher"]["macs"]
    assert cards["int8"]["macs"] == cards["student"]["macs"]
    assert cards["int8"]["latency"]["ort_int8_b1_ms"] > 0 and cards["teacher"]["latency"]["eager_b1_ms"] > 0
    q = json.loads((run / "gazenet" / "quantize" / "summary.json").read_text())
    assert cards["int8"]["value"] == q["int8"][q["primary_metric"]]
    assert any(n.startswith("MACs by layer kind: ") for n in cards["int8"]["notes"])
    assert ("warning" in q) == any(n == q.get("warning") for n in cards["int8"]["notes"])
    # Training curves: one point per logged epoch.
    assert t["curves"]["teacher"]["epoch"] == [1, 2]
    # The agreement is recomputed from the saved maps.
    pair = t["saliency"]["agreement"]["pairs"]["student"]
    assert pair["status"] == "ok" and -1.0 <= pair["mean"] <= 1.0
    # The compress stage's search: every candidate of front.json in the table, the winner named.
    front = json.loads((run / "gazenet" / "compress" / "front.json").read_text())
    assert [c["name"] for c in t["compress"]["candidates"]] == [c["name"] for c in front["candidates"]]
    best = json.loads((run / "gazenet" / "compress" / "summary.json").read_text())["best"]["name"]
    md = (report / "report.md").read_text()
    assert f"best under the budget: {best} (" in md
    assert "## gazenet" in md and "### Error vs MACs (Pareto)" in md and "figures/gazenet-pareto.png" in md


def test_rerun_skips_every_stage_and_cli_report(tiny_run, tmp_path):
    run, _, _ = tiny_run
    recipe = run.parent / "tiny.toml"
    res = runner.invoke(app, ["run", str(recipe), "--json"])
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert {s["status"] for s in summary["teachers"]["gazenet"].values()} == {"skipped"}
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", str(run), "--out", str(out)])
    assert res.exit_code == 0 and res.stdout.strip() == f"report: {out / 'index.html'}"
    res = runner.invoke(app, ["report", str(run), "--out", str(out)])  # exists: refused, one line
    assert res.exit_code == 2 and "--force" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    inv = json.loads((run / "pipeline.json").read_text())["invocations"]
    assert [i["status"] for i in inv] == ["done", "done"]


def test_missing_stages_are_named_not_fatal(tiny_run, tmp_path):
    """A run interrupted after training: the report says which sections were not run."""
    run, _, _ = tiny_run
    partial = tmp_path / "partial" / "gazenet"
    shutil.copytree(run / "gazenet" / "train", partial / "train")
    (partial / "prune").mkdir()
    (partial / "prune" / "error.log").write_text("Traceback...\nRuntimeError: boom <script>alert(1)</script>\n")
    res = build_report([tmp_path / "partial"], tmp_path / "rep", progress=False)
    page = _parse(Path(res["index"]))
    assert page.sections["gazenet-models"] == "ok" and page.sections["gazenet-training"] == "ok"
    for part in ("pareto", "saliency", "faithfulness", "embeddings", "fc-importance", "export"):
        assert page.sections[f"gazenet-{part}"] == "missing"
    assert page.sections["gazenet-compress"] == "n/a"  # off: no [compress] budget, so no folder
    html = Path(res["index"]).read_text()
    assert "not run (stage analyze not run)" in html
    assert "stage prune failed (RuntimeError: boom &lt;script&gt;alert(1)&lt;/script&gt;)" in html
    assert "<script>alert(1)" not in html and page.scripts == 1  # only the report's own image check


def test_plain_training_run_and_bad_inputs(tiny_run, tmp_path):
    run, _, _ = tiny_run
    res = build_report([run / "gazenet" / "train"], tmp_path / "r1", progress=False)
    page = _parse(Path(res["index"]))
    assert page.sections["gazenet-training"] == "ok" and page.sections["gazenet-saliency"] == "missing"
    with pytest.raises(WorkbenchError, match="not a pipeline run folder"):
        build_report([tmp_path], tmp_path / "r2", progress=False)
    with pytest.raises(WorkbenchError, match="no such folder"):
        build_report([tmp_path / "nope"], tmp_path / "r3", progress=False)
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_two_runs_of_the_same_teacher_get_two_sections(tiny_run, tmp_path):
    run, _, _ = tiny_run
    shutil.copytree(run / "gazenet" / "train", tmp_path / "b" / "gazenet" / "train")
    res = build_report([run, tmp_path / "b"], tmp_path / "rep", progress=False)
    assert res["teachers"] == ["gazenet (run)", "gazenet (b)"]


def test_spearman_and_agreement(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((3, 50))
    assert np.allclose(spearman_rows(a, a), 1.0) and np.allclose(spearman_rows(a, -a), -1.0)
    b = a + rng.random((3, 50))
    ranks = lambda m: np.argsort(np.argsort(m, axis=1), axis=1).astype(float)  # no ties: plain ranks
    assert np.allclose(spearman_rows(a, b), [np.corrcoef(x, y)[0, 1] for x, y in zip(ranks(a), ranks(b))])
    # Ties get their average rank: [1, 2, 2, 3] ranks as [1, 2.5, 2.5, 4]; rho with [1, 2, 3, 4] = 0.9487.
    tied = spearman_rows(np.array([[1.0, 2.0, 2.0, 3.0]]), np.array([[1.0, 2.0, 3.0, 4.0]]))
    assert tied[0] == pytest.approx(3 / np.sqrt(10), abs=1e-12)
    assert np.isnan(spearman_rows(np.ones((1, 5)), a[:1, :5]))[0]  # a constant map has no ranking
    maps = rng.random((4, 3, 28, 28)).astype(np.float32)
    for name, m in (("teacher", maps), ("pruned", maps * 2), ("student", rng.random(maps.shape))):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "attributions.npz", face__yaw=m, subject=np.arange(4))
    res = agreement({k: tmp_path / k for k in ("teacher", "pruned", "student")})
    assert res["pairs"]["pruned"]["mean"] == pytest.approx(1.0)
    assert abs(res["pairs"]["student"]["mean"]) < 0.2
    np.savez(tmp_path / "student" / "attributions.npz", face__yaw=maps, subject=np.arange(1, 5))
    res = agreement({k: tmp_path / k for k in ("teacher", "student")})
    assert res["pairs"]["student"]["status"] == "missing" and "different samples" in res["pairs"]["student"]["reason"]


def test_the_report_says_which_data_each_figure_was_measured_on(tiny_run):
    _, report, _ = tiny_run
    doc = json.loads((report / "report.json").read_text())
    on = doc["teachers"][0]["measured_on"]
    assert on["metrics"] == "SynthGaze (held-out subjects), validation split"
    # Saliency and checks record the data spec they drew from: the run's own validation split.
    assert on["saliency (teacher)"] == "SynthGaze, validation split"
    md = (report / "report.md").read_text()
    assert "Measured on: gazenet" in md and "validation split" in md and "Measured on SynthGaze held-out" not in md


# ---- latency context and the cut ratio, from hand-written run folders (no pipeline needed) ------------------
MACHINE = {"cpu": "Test CPU 3000", "cores": 4, "os": "Linux", "onnxruntime": "1.0.0", "torch": "2.0.0"}


def _fake_pipeline(root: Path, *, recorded: bool) -> Path:
    """A gazenet pipeline folder with known MACs and onnxruntime batch-1 latencies per model; ``recorded``:
    the profile JSONs hold threads and the machine (as now), else only the timings (as older runs did)."""
    tdir = root / "gazenet"
    known = {"teacher": (100e6, 10.0), "pruned": (50e6, 6.0), "student": (120e6, 8.0), "int8": (25e6, 2.5)}
    for name, folder in (("teacher", "train"), ("pruned", "prune"), ("student", "distill/student")):
        (tdir / folder).mkdir(parents=True)
        (tdir / folder / "config.json").write_text(json.dumps({"teacher": "gazenet", "task": "face_angles"}))
        (tdir / folder / "metrics.json").write_text(json.dumps({"primary_metric": "angular_error", "best": 5.0}))
    (tdir / "quantize").mkdir()
    (tdir / "quantize" / "model.int8.onnx").write_bytes(b"")
    (tdir / "quantize" / "summary.json").write_text(json.dumps({"primary_metric": "angular_error"}))
    (tdir / "profile").mkdir()
    for name, (macs, ms) in known.items():
        key = "onnxruntime_int8" if name == "int8" else "onnxruntime"
        lat = {key: {"batch_1": {"median_ms": ms}}}
        if recorded:
            lat.update(threads=1, batch_sizes=[1], device="cpu", machine=MACHINE)
        (tdir / "profile" / f"{name}.json").write_text(json.dumps({"profile": {"macs": macs}, "latency": lat}))
    return root


def _rows(root: Path) -> dict[str, dict]:
    from workbench.report.build import _card
    from workbench.report.collect import collect_teacher, discover

    data = collect_teacher(discover(root)[0])
    return {c["name"]: dict(_card(c)["rows"]) for c in data["models"]}


def test_compressed_cards_show_the_latency_cut_over_the_mac_cut(tmp_path):
    root = _fake_pipeline(tmp_path / "run", recorded=True)
    rows = _rows(root)
    label = "latency cut / MAC cut vs teacher (onnxruntime fp32, batch 1)"
    assert rows["pruned"][label] == "0.80"  # (1 - 6/10) / (1 - 50/100)
    assert rows["student"][label] == "n/a"  # more MACs than the teacher: no MAC cut to divide by
    assert rows["int8"]["latency cut / MAC cut vs teacher (onnxruntime int8 vs the teacher's fp32, batch 1)"] == "1.00"
    assert not any(k.startswith("latency cut") for k in rows["teacher"])
    assert rows["teacher"]["onnxruntime fp32, batch 1, 1 thread"] == "10.00 ms"
    assert rows["int8"]["onnxruntime int8, batch 1, 1 thread"] == "2.50 ms"
    res = build_report([root], tmp_path / "rep", progress=False)
    md = Path(res["markdown"]).read_text()
    assert "latency on Test CPU 3000, 4 cores, Linux, onnxruntime 1.0.0, torch 2.0.0." in md
    assert "this machine's CPU" not in md and label in md


def test_an_old_run_without_machine_or_threads_still_renders(tmp_path):
    root = _fake_pipeline(tmp_path / "run", recorded=False)
    rows = _rows(root)
    assert rows["teacher"]["onnxruntime fp32, batch 1, threads not recorded"] == "10.00 ms"
    assert rows["pruned"]["latency cut / MAC cut vs teacher (onnxruntime fp32, batch 1)"] == "0.80"
    (root / "gazenet" / "profile" / "teacher.json").write_text(json.dumps({"profile": {}, "latency": "garbled"}))
    assert _rows(root)["pruned"]["latency cut / MAC cut vs teacher (onnxruntime fp32, batch 1)"] == "n/a"
    res = build_report([root], tmp_path / "rep", progress=False)
    assert "latency on machine not recorded." in Path(res["markdown"]).read_text()
    assert _parse(Path(res["index"])).sections["gazenet-models"] == "ok"


def test_links_part_shows_what_analysis_said_beside_what_compression_did(tiny_run, tmp_path):
    """Prune with --scope erank and distill with preset auto + saliency KD into a copy of the pipeline run:
    the report's links part puts each group's effective rank beside the units kept, and the auto-size
    measurement beside the student's width."""
    from workbench.compress.distill import distill
    from workbench.compress.prune import prune

    run, _, _ = tiny_run
    copy = tmp_path / "copy" / "gazenet"
    for stage in ("train", "analyze"):
        shutil.copytree(run / "gazenet" / stage, copy / stage)
    pr = prune(copy / "train", copy / "prune", target_macs=0.6, scope="erank", steps=1, finetune_epochs=0,
               calib_samples=16, progress=False, device="cpu")
    ds = distill(copy / "train", copy / "distill", student="tinyface", preset="auto", kd=("response", "saliency"),
                 epochs=1, recipe_overrides={"n_train": 32}, progress=False, device="cpu")
    res = build_report([tmp_path / "copy"], tmp_path / "rep", progress=False)
    page = _parse(Path(res["index"]))
    assert page.sections["gazenet-links"] == "ok"
    doc = json.loads(Path(res["json"]).read_text())
    links = doc["teachers"][0]["links"]
    assert links["prune"]["scope"] == "erank" and links["prune"]["erank"] == pr["erank"]
    assert links["distill"]["auto_size"]["chosen"] == ds["auto_size"]["chosen"]
    md = Path(res["markdown"]).read_text()
    assert "Effective rank per layer group" in md
    group, e = next(iter(pr["erank"].items()))
    after = md[md.index("Effective rank per layer group"):].splitlines()
    row = next(line for line in after if line.startswith(f"| {group} |"))
    assert str(e["width"]) in row and str(e["keep"]) in row
    assert f"student hint width {ds['auto_size']['chosen']}" in md and "KD response+saliency" in md
