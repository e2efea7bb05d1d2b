"""`nasapp check`'s estimate against the real job's wall time, for the demo and every example job.

    .venv/bin/python bench/check_estimate.py                  # all of them (about 15 minutes on 2 cores)
    .venv/bin/python bench/check_estimate.py demo examples/mlp-wine.toml   # "demo": the built-in demo

For each job: `nasapp check JOB --json` (its estimate of the job's wall time), then `nasapp run JOB` into a
fresh store and the job's own elapsed time (`nasapp show --json`). Target: every estimate within +-25% of the
real wall time. The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NASAPP = Path(sys.executable).parent / "nasapp"
TOLERANCE = 0.25


def jobs() -> list[str | None]:
    found = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("*.toml"))
    return [None, *found]  # None: the built-in demo


def nasapp(*args: str) -> str:
    result = subprocess.run([str(NASAPP), *args], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"nasapp {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def measure(job: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="nasapp-check-bench-") as folder:
        db = str(Path(folder) / "real.db")
        estimate = json.loads(nasapp("check", *([job] if job else []), "--json"))["estimate"]
        nasapp("run", *([job] if job else []), "--db", db)
        real = json.loads(nasapp("show", "1", "--json", "--db", db))["elapsed_s"]
    error = estimate["wall_s"] / real - 1
    row = {"job": job or "demo", "estimate_s": estimate["wall_s"], "real_s": real, "error": round(error, 3),
           "within": abs(error) <= TOLERANCE, "max_trials": estimate["max_trials"], "slots": estimate["slots"],
           **{key: estimate[key] for key in ("startup_s", "stage_mean_s", "mean_trial_s", "steered_trials",
                                             "steered_trial_s")}}
    print(f"{row['job']}: estimate {row['estimate_s']:.1f} s, real {real:.1f} s ({error:+.0%})", flush=True)
    return row


def main() -> None:
    chosen = [None if arg == "demo" else arg for arg in sys.argv[1:]] or jobs()
    rows = [measure(job) for job in chosen]
    print(json.dumps({"bench": "check_estimate", "rows": rows, "tolerance": TOLERANCE,
                      "met": all(r["within"] for r in rows), "cpus": os.cpu_count(),
                      "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
