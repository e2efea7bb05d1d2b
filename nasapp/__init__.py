"""nasapp: neural architecture search on your own workstation.

The public API: the search-space language, the trainer context, the command-trainer helpers, ``load_model``
(a found model, or a prebuilt baseline, as a PyTorch module with its weights), and jobs from Python: ``run`` a
job (in this process or in the background), ``attach`` to one, and read its trials, best, front and plots
through its ``JobHandle`` (docs/api.md).

    import nasapp as nas
    space = nas.space({"width": nas.choice([32, 64]), "depth": nas.integer(1, 4)})
    job = nas.run("job.toml", max_trials=20, wait=False)
    job.wait(); job.best(3); job.plot_curve()
"""

from nasapp.engine.errors import NasappError, SpaceError, TrialFailed
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.execution.script_api import report, trial

__version__ = "0.1.0"

# The space language (numpy), load_model (torch) and jobs from Python load on first use: a command trainer's
# `import nasapp` (for nasapp.report) and `nasapp ls` (which imports this package first) stay quick.
_LAZY = {
    **dict.fromkeys(("Space", "boolean", "choice", "floating", "integer", "repeat", "space"), "nasapp.engine.spaces"),
    "load_model": "nasapp.engine.results.load_model",
    "run": "nasapp.engine.jobs.run_api", "attach": "nasapp.engine.results.handle",
    "JobHandle": "nasapp.engine.results.handle", "TrialRecord": "nasapp.engine.results.trial_records",
    "SvgChart": "nasapp.engine.results.svg_charts",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nasapp' has no attribute {name!r}")

__all__ = [
    "JobHandle", "NasappError", "Space", "SpaceError", "SvgChart", "TrialContext", "TrialFailed", "TrialRecord",
    "attach", "boolean", "choice", "floating", "integer", "load_model", "repeat", "report", "run", "space", "trial",
]
