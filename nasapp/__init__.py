"""nasapp: neural architecture search on your own workstation.

The public API: the search-space language, the trainer context, the command-trainer helpers, and
``load_model`` (a found model, or a prebuilt baseline, as a PyTorch module with its weights).

    import nasapp as nas
    space = nas.space({"width": nas.choice([32, 64]), "depth": nas.integer(1, 4)})
"""

from nasapp.engine.errors import NasappError, SpaceError, TrialFailed
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.execution.script_api import report, trial
from nasapp.engine.results.load_model import load_model
from nasapp.engine.spaces import Space, boolean, choice, floating, integer, repeat, space

__version__ = "0.1.0"

__all__ = [
    "NasappError", "Space", "SpaceError", "TrialContext", "TrialFailed", "boolean", "choice", "floating",
    "integer", "load_model", "repeat", "report", "space", "trial",
]
