"""The search-space screen: a job's space as `nasapp spaces NAME` prints it: its size ("15,625 architectures",
or "N discrete combinations × K continuous dimensions"), every dimension, and a prebuilt space's baselines.
It reads the space the job stored, so a custom space shows as the job saw it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from nasapp.app.formatting import markup_safe as escape  # also makes control characters visible
from nasapp.app.formatting import space_lines
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.spaces import Space

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp


def job_space_text(job) -> str:
    """The lines of a job's space (or why they cannot be shown)."""
    from nasapp.engine.spaces.prebuilt import list_prebuilt

    spec = job_spec(job).space
    label = spec.label
    prebuilt = next((p for p in list_prebuilt() if p.name == spec.prebuilt), None)
    try:
        space = Space.from_json(job.space)
    except Exception as error:  # noqa: BLE001 - shown, never a crash
        return f"{label}: the stored space cannot be read ({type(error).__name__}: {error})"
    description = prebuilt.description if prebuilt is not None else "a custom space"
    baselines = prebuilt.baselines if prebuilt is not None else {}
    return "\n".join(space_lines(label, description, space, baselines))


class SpaceScreen(Screen):
    """The job's search space: its size and dimensions."""

    HELP = """\
## Search space

The job's search space as `nasapp spaces NAME` prints it: its size (discrete combinations, and the number of
continuous dimensions when it has any), then every dimension with its kind and values (`blocks[*].kernel`:
the kernel of every block; `head{mlp}.width`: an option's own setting).
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help"),
        Binding("escape,backspace", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    SpaceScreen #space { padding: 0 1; }
    """

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        job = self.nas.store.job(self.job_id)
        self.title = f"Job {self.job_id}: search space"
        yield Header()
        with VerticalScroll(id="scroll"):
            yield Static(escape(job_space_text(job)) if job is not None else f"no job {self.job_id}", id="space")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#scroll").focus()
