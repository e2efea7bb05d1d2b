"""`nasapp report JOB`: a real nb201 job replayed from a synthetic table (with a random-search job on the same
table to compare with) gives one self-contained page: it parses, names no URL, escapes what users wrote, and
every chart holds data. Headless Chromium (Debian's `chromium`) renders it with no console message, and a
screenshot shows colour inside every chart."""

from __future__ import annotations

import csv
import html
import itertools
import json
import os
import re
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import NO_TORCH, nasapp_cli, write_job

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.results.comparison import random_job, space_hash
from nasapp.engine.results.job_report import html_report
from nasapp.engine.spaces import nb201
from nasapp.store import Store

CHROMIUM = Path("/usr/bin/chromium")
NEEDS_CHROMIUM = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
CHROMIUM_TIMEOUT_S = 60
EFFECT = {"none": -2.0, "skip_connect": 0.0, "nor_conv_1x1": 0.5, "nor_conv_3x3": 2.0, "avg_pool_3x3": -1.0}
WEIGHT = {"1<-0": 1.5, "2<-0": 0.2, "2<-1": 0.2, "3<-0": 3.0, "3<-1": 0.2, "3<-2": 0.2}
FLOPS = {"none": 0.0, "skip_connect": 0.0, "nor_conv_1x1": 1.0, "nor_conv_3x3": 9.0, "avg_pool_3x3": 0.5}
TRIALS = 60
CHARTS = {"curve", "pareto", "importance", "parallel", "comparison"}
NAME = 'nb201 <b>"evo"</b> & co'  # a job name that would be markup if it were not escaped


def write_table(path: Path) -> Path:
    """Every NAS-Bench-201 cell: an accuracy where 3<-0 and 1<-0 decide (conv3x3 best), seeded noise, and
    FLOPs that grow with the convolutions (so the front trades one for the other)."""
    noise = np.random.default_rng(0).normal(0.0, 0.5, 5**6)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "accuracy", "flops"])
        for ops, jitter in zip(itertools.product(nb201.OPS, repeat=6), noise, strict=True):
            cell = f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"
            value = 80 + sum(WEIGHT[e] * EFFECT[op] for e, op in zip(nb201.EDGE_KEYS, ops, strict=True))
            writer.writerow([cell, round(value + jitter, 4), 10 + sum(FLOPS[op] for op in ops)])
    return path


def run_tabular(store: Store, folder: Path, table: Path, name: str, strategy: str) -> int:
    options = "population = 10\nsample_size = 3" if strategy == "evolution" else ""
    job_file = write_job(folder, f"""
        name = {json.dumps(name)}
        seed = 3
        [space]
        prebuilt = "nb201"
        [trainer]
        prebuilt = "tabular"
        options = {{ table = "{table}", space = "nb201", metric_column = "accuracy" }}
        [strategy]
        name = "{strategy}"
        {options}
        [reward]
        metric = "accuracy"
        [search]
        max_trials = {TRIALS}
        parallel = 1
        [latency]
        device = "none"
    """, name=f"{strategy}.toml")
    job_id = create_job(store, load_job(job_file))
    assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    return job_id


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """A random-search job, then an evolution job on the same table (its report compares the two)."""
    folder = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NASAPP_HOME", str(folder / "home"))
        store = Store(folder / "nasapp.db")
        table = write_table(folder / "nb201.csv")
        random_id = run_tabular(store, folder, table, "nb201 random", "random")
        evo_id = run_tabular(store, folder, table, NAME, "evolution")
    return folder, store, store.job(evo_id), store.job(random_id)


@pytest.fixture(scope="module")
def page(jobs):
    folder, store, job, _ = jobs
    path = folder / "report.html"
    path.write_text(html_report(store, job), encoding="utf-8")
    return path


def empty_job(store: Store, folder: Path) -> int:
    """A job on another space (mlp) that has run no trial."""
    return create_job(store, load_job(write_job(folder, """
        name = "empty"
        [space]
        prebuilt = "mlp"
        [data]
        kind = "digits"
        [search]
        max_trials = 1
    """, name="empty.toml")))


class _Parts(HTMLParser):
    """The page's tags as (tag, attrs), its charts (data-chart -> the marks inside) and its visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.marks: dict[str, int] = {}
        self.text: list[str] = []
        self._chart: str | None = None

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.tags.append((tag, found))
        if "data-chart" in found:
            self._chart = found["data-chart"]
            self.marks[self._chart] = 0
        elif self._chart and tag in ("circle", "polyline", "rect") and self._in_series(found):
            self.marks[self._chart] += 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "figure":
            self._chart = None

    def handle_data(self, data):
        self.text.append(data)

    def _in_series(self, attrs):
        # a mark counts when it, or the <g> it sits in (the last opened one), names a data series
        return "data-series" in attrs or any("data-series" in a for t, a in self.tags[-2:-1] if t == "g")


def parts_of(path: Path) -> _Parts:
    parser = _Parts()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def test_the_page_is_self_contained_and_every_chart_has_data(jobs, page):
    _, _, job, random = jobs
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    parts = parts_of(page)
    tags = {tag for tag, _ in parts.tags}
    assert not tags & {"script", "link", "iframe", "img", "object", "embed"}
    assert not [a for _, attrs in parts.tags for k, a in attrs.items() if k in ("src", "href") and a]
    assert set(parts.marks) >= CHARTS and all(n > 0 for n in parts.marks.values()), parts.marks
    assert NAME in "".join(parts.text) and "<b>" not in text  # the name is shown as text, never as markup
    body = "".join(parts.text)
    assert space_hash(job) in body and len(space_hash(job)) == 64
    for field in ("job seed", "nasapp", "git commit", "python", "torch", "numpy", "onnxruntime", "optuna",
                  "CPU", "GPU-hours", "CPU-slot-hours", "wall time", "succeeded 60"):
        assert field in body, field
    assert f"job {random.id} nb201 random" in body  # the comparison found the random job on the same problem
    assert "3<-0" in body and "nor_conv_3x3" in body  # the analysis: its decisions and the reward per choice


def test_the_random_job_is_found_by_the_rule_and_a_random_job_is_compared_with_nothing(jobs):
    _, store, job, random = jobs
    assert random_job(store, job).id == random.id
    assert random_job(store, random) is None
    page = html_report(store, random)
    assert "This job is itself random search" in page


def test_against_a_job_of_another_space_is_refused(jobs, tmp_path):
    _, store, job, _ = jobs
    other = empty_job(store, tmp_path)
    with pytest.raises(NasappError, match="another space"):
        html_report(store, job, against=store.job(other))


@pytest.mark.slow
def test_the_cli_writes_the_page_and_refuses_bad_cases_in_one_line(jobs, tmp_path):
    folder, store, job, random = jobs
    db = str(folder / "nasapp.db")
    target = tmp_path / "r.html"
    done = nasapp_cli("report", str(job.id), "-o", str(target), "--against", str(random.id), "--sample", "40",
                      "--db", db, check=True)
    assert f"wrote {target}" in done.stdout and "KB" in done.stdout and target.stat().st_size > 10_000
    empty = empty_job(store, tmp_path)
    for args, message in ((["nope"], "no job 'nope'"), ([str(empty)], "no succeeded trials"),
                          ([str(job.id), "-o", str(tmp_path / "missing" / "r.html")], "does not exist"),
                          ([str(job.id), "-o", str(tmp_path)], "it is a folder")):
        failed = nasapp_cli("report", *args, "--db", db)
        assert failed.returncode == 2 and message in failed.stderr, failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1 and "Traceback" not in failed.stderr


# ---- headless Chromium -------------------------------------------------------------------------------------

# Runs last in the page (a copy given to Chromium only): each chart's box and its data marks that have a
# rendered size, and the page's height, as JSON in a <pre> that --dump-dom prints.
PROBE = """<script>
const charts = [...document.querySelectorAll("figure[data-chart]")].map(figure => {
  const box = figure.querySelector("svg").getBoundingClientRect();
  const marks = [...figure.querySelectorAll("[data-series], [data-series] *")]
    .filter(mark => ["circle", "polyline", "rect"].includes(mark.tagName))
    .filter(mark => { const r = mark.getBoundingClientRect(); return r.width > 0 || r.height > 0; });
  return {name: figure.dataset.chart, marks: marks.length,
          box: [box.left + scrollX, box.top + scrollY, box.width, box.height]};
});
const probe = document.createElement("pre");
probe.id = "probe"; probe.hidden = true;
probe.textContent = JSON.stringify({charts, height: document.documentElement.scrollHeight});
document.body.append(probe);
</script>"""
WIDTH = 1280


def chromium(*args: str, folder: Path) -> subprocess.CompletedProcess:
    """Headless Chromium with nothing that reaches the network, bounded in time; every process it started is
    killed by its group (its PID) on the way out."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", "--force-device-scale-factor=1", "--enable-logging=stderr", "--v=0",
               f"--user-data-dir={folder / 'profile'}", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "HOME": str(folder)})
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def console_lines(stderr: str) -> list[str]:
    """What the page logged to its console (errors, CSP violations, blocked loads): Chromium's CONSOLE lines."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def coloured_pixels(image, box: list[float]) -> int:
    """Pixels inside ``box`` whose channels differ by more than 60: data marks (axes, grid and text are grey)."""
    left, top, width, height = (round(v) for v in box)
    region = np.asarray(image.convert("RGB").crop((left, top, left + width, top + height)), dtype=int)
    return int(((region.max(axis=2) - region.min(axis=2)) > 60).sum())


@NEEDS_CHROMIUM
@pytest.mark.slow
def test_headless_chromium_renders_every_chart_with_data_and_logs_nothing(page, tmp_path):
    from PIL import Image

    probed = tmp_path / "probed.html"
    text = page.read_text(encoding="utf-8")
    probed.write_text(text.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
                      .replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    dumped = chromium("--dump-dom", probed.as_uri(), folder=tmp_path)
    found = re.search(r'<pre id="probe" hidden="">(.*?)</pre>', dumped.stdout, re.S)
    assert dumped.returncode == 0 and found, dumped.stderr[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    charts = {c["name"]: c for c in probe["charts"]}
    assert set(charts) >= CHARTS and all(c["marks"] > 0 for c in charts.values()), charts

    shot = tmp_path / "report.png"
    height = min(probe["height"], 16000)
    shown = chromium(f"--screenshot={shot}", f"--window-size={WIDTH},{height}", page.as_uri(), folder=tmp_path)
    assert shown.returncode == 0 and shot.stat().st_size > 20_000, shown.stderr[-2000:]
    assert console_lines(shown.stderr + dumped.stderr) == []
    with Image.open(shot) as image:
        assert image.size == (WIDTH, height)
        for name, chart in charts.items():
            assert coloured_pixels(image, chart["box"]) > 100, f"the {name} chart looks blank"
        if os.environ.get("NASAPP_REPORT_SCREENSHOT"):  # docs/report-screenshot.png is made this way
            save_screenshot(image, Path(os.environ["NASAPP_REPORT_SCREENSHOT"]))


def save_screenshot(image, target: Path) -> None:
    """The page at 60% of its size, in 256 colours (octree keeps the charts' few hues): small enough for docs."""
    from PIL import Image

    small = image.convert("RGB").resize((image.width * 3 // 5, image.height * 3 // 5), Image.Resampling.LANCZOS)
    small.quantize(256, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)
