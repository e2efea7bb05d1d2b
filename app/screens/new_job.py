"""The new-job screen: pick a job file or a prebuilt example, adjust the main fields, validate, launch.

Validation is the CLI's own (read_job_file, apply_overrides, parse_job, then the engine's one validate_job:
reward, trainer, space and data), so a bad file or field shows exactly the message `nasapp run` would
print, and a job the screen calls valid is one the runner accepts. Loading the data can take seconds, so
validation runs in a thread, a moment after the last edit, and reports back with a message. Launching
writes the validated job (absolute paths) beside the store and starts `nasapp run FILE --db DB` as a
detached process: closing the dashboard leaves the search running.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Header, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from nasapp.app.formatting import markup_safe as escape  # also makes control characters visible
from nasapp.engine.data.options import FileData
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.executors import EXECUTORS
from nasapp.engine.execution.launch import launch_detached, launch_dir
from nasapp.engine.jobs.spec import JobSpec, apply_overrides, parse_job, read_job_file
from nasapp.engine.strategies import STRATEGIES

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

DEMO = "built-in demo"
VALIDATE_AFTER_S = 0.3  # validation starts this long after the last edit


@dataclass(frozen=True)
class JobSource:
    label: str
    path: Path | None  # None: the built-in demo job


def default_search_dirs() -> list[Path]:
    """Where job files are looked for: the working directory, its examples/, and nasapp's own examples/."""
    import nasapp.app

    repo_examples = Path(nasapp.app.__file__).resolve().parents[1] / "examples"
    return [Path.cwd(), Path.cwd() / "examples", repo_examples]


def find_job_sources(search_dirs: list[Path]) -> list[JobSource]:
    """The built-in demo, then every `*.toml` and `*/job.toml` in the search folders (each file once)."""
    sources = [JobSource(DEMO, None)]
    seen: set[Path] = set()
    for folder in search_dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")) + sorted(folder.glob("*/job.toml")):
            resolved = path.resolve()
            if resolved in seen or resolved.name == "pyproject.toml":
                continue
            seen.add(resolved)
            sources.append(JobSource(f"{folder.name}/{path.relative_to(folder)}", resolved))
    return sources


# ---- validation, the CLI's way ---------------------------------------------------------------------

@dataclass
class Checked:
    spec: JobSpec
    space_size: str  # Space.size_text(): "15,625 architectures", "N discrete combinations × K continuous ..."
    notes: list[str]  # legal settings that are probably not what was meant (the runner logs them as warnings)


def parse_parallel(text: str) -> int | str | None:
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def check_job(path: Path | None, name: str = "", max_trials: str = "", parallel: str = "",
              strategy: str | None = None, executor: str | None = None) -> Checked:
    """Validate a job source with the form's overrides, the way `nasapp run` does (parse_job, then
    validate_job); raises NasappError with the CLI's message."""
    from nasapp.engine.jobs.demo import demo_job
    from nasapp.engine.jobs.validation import validate_job

    if path is None:
        raw, source, base = demo_job(), "built-in demo job", Path.cwd()
    else:
        raw, source, base = read_job_file(path), str(path), path.parent
    raw = apply_overrides(raw, max_trials=int(max_trials) if max_trials.strip().isdigit() else None,
                          parallel=parse_parallel(parallel))
    if max_trials.strip() and not max_trials.strip().isdigit():
        raw["search"]["max_trials"] = max_trials.strip()  # let the spec say what is wrong with it
    if name.strip():
        raw["name"] = name.strip()
    if strategy:
        table = raw.get("strategy") if isinstance(raw.get("strategy"), dict) else {}
        if table.get("name", STRATEGIES.default) != strategy and strategy in STRATEGIES:
            # another strategy than the file's: keep only the options the chosen one knows
            known = STRATEGIES.get(strategy).options.model_fields
            table = {key: value for key, value in table.items() if key in known}
        raw["strategy"] = {**table, "name": strategy}
    if executor:
        raw["search"] = _with_executor(raw.get("search"), executor)
    validated = validate_job(parse_job(raw, source=source, base=base))
    return Checked(validated.spec, validated.space.size_text(), list(validated.notes))


def _with_executor(search: Any, executor: str) -> dict[str, Any]:
    """``[search]`` with another executor than the file's: the keys only the file's executor knows are dropped."""
    table = dict(search) if isinstance(search, dict) else {}
    if table.get("executor", EXECUTORS.default) != executor and executor in EXECUTORS:
        known = EXECUTORS.get(executor).options.model_fields
        table = {key: value for key, value in table.items() if key in known}
    return {**table, "executor": executor}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()
                                if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def to_toml(data: dict[str, Any]) -> str:
    """A job table as TOML: top-level values first, then one [table] per sub-table (None values left out)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()
             if v is not None and not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_job_file(spec: JobSpec, folder: Path) -> Path:
    """The validated job (absolute paths) as a TOML file the runner reads like any job file."""
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.name).strip("-") or "job"
    path = folder / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}.toml"
    header = f"# written by the nasapp dashboard on {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    path.write_text(header + to_toml(spec.model_dump(mode="json", exclude_none=True)))
    return path


# ---- the screen ----------------------------------------------------------------------------------------

FormKey = tuple[JobSource, tuple[tuple[str, Any], ...]]  # what one validation is of: the source and the fields


class NewJobScreen(Screen):
    """Start a search: a job file or example, the main fields, the CLI's validation, a detached runner."""

    TITLE = "New job"
    HELP = """\
## New job

1. Pick a job file on the left (the built-in demo, `*.toml` in the working folder and its
   `examples/`, nasapp's examples), or type a path and press enter.
2. Adjust the name, budget (max trials), parallel workers (a number or `auto`), strategy and executor
   (`local` worker processes, or `ray`: the file's `[search]` keys say which cluster).
   Every change is validated a moment later (loading the data included), with the messages
   `nasapp run` prints.
3. **ctrl+r** (or the Launch button) starts the search as its own process: closing the dashboard
   leaves it running. The job appears on the jobs screen.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("f1", "app.help", "Help"),
        Binding("ctrl+r", "launch", "Launch", priority=True),
    ]
    DEFAULT_CSS = """
    NewJobScreen #body { height: 1fr; }
    NewJobScreen #sources { width: 2fr; min-width: 26; border: round $primary 50%; }
    NewJobScreen #sources OptionList { height: 1fr; border: none; }
    NewJobScreen #form { width: 3fr; border: round $primary 50%; padding: 0 1; }
    NewJobScreen .field { height: 1; margin-bottom: 1; }
    NewJobScreen .field Label { width: 12; }
    NewJobScreen .field Input { width: 1fr; background: $boost; }
    /* the focused field must show on 16- and 256-colour terminals too, where $boost and a focused input's
       background come out as one colour: it takes the accent and bold text */
    NewJobScreen .field Input:focus { background: $accent 50%; text-style: bold; }
    NewJobScreen .field Select:focus > SelectCurrent { background: $accent 50%; text-style: bold; }
    NewJobScreen .field Select { width: 1fr; }
    NewJobScreen #path { margin-top: 1; }
    NewJobScreen #preview { height: auto; color: $text-muted; }
    NewJobScreen #errors { height: auto; color: $text-error; }
    NewJobScreen #buttons { height: 3; margin-top: 1; }
    NewJobScreen.-invalid #launch { display: none; }
    """

    class Validated(Message):
        """A validation (run in a thread) ended: `checked` when the job is valid, else `error`."""

        def __init__(self, request: int, checked: Checked | None, error: str | None) -> None:
            super().__init__()
            self.request = request
            self.checked = checked
            self.error = error

    validating: reactive[bool] = reactive(False, init=False)  # a validation is running

    def __init__(self, search_dirs: list[Path] | None = None) -> None:
        super().__init__(classes="-invalid")
        self.search_dirs = search_dirs if search_dirs is not None else default_search_dirs()
        self.sources = find_job_sources(self.search_dirs)
        self.source: JobSource = self.sources[0]
        self.checked: Checked | None = None
        self.error: str | None = None
        self.launched: tuple[Any, Path, Path] | None = None  # (process, job file, log) of the last launch
        self._request = 0  # bumped for every validation started: the result of an older one is dropped
        self._requested: FormKey | None = None  # what the latest validation is (or was) of
        self._timer: Timer | None = None
        self._launch_when_valid = False

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="sources"):
                yield OptionList(*[Option(Text(s.label, no_wrap=True, overflow="ellipsis"), id=str(i))
                                   for i, s in enumerate(self.sources)], id="files")
                yield Input(placeholder="or a path to a job file + enter", id="path", compact=True)
            with VerticalScroll(id="form"):
                with Horizontal(classes="field"):
                    yield Label("name")
                    yield Input(id="name", compact=True)
                with Horizontal(classes="field"):
                    yield Label("max trials")
                    yield Input(id="max_trials", compact=True, restrict=r"[0-9]*")
                with Horizontal(classes="field"):
                    yield Label("parallel")
                    yield Input(id="parallel", compact=True, placeholder="a number or auto")
                with Horizontal(classes="field"):
                    yield Label("strategy")
                    yield Select([(s, s) for s in _searching_strategies()], id="strategy", allow_blank=False,
                                 compact=True)
                with Horizontal(classes="field"):
                    yield Label("executor")
                    yield Select([(e, e) for e in EXECUTORS.names()], id="executor", allow_blank=False,
                                 compact=True)
                yield Static("", id="errors")
                yield Static("", id="preview")
                with Horizontal(id="buttons"):
                    yield Button("Launch (ctrl+r)", id="launch", variant="success")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#sources").border_title = "job file"
        self.query_one("#form").border_title = "job"
        self.load_source(self.source)
        self.query_one("#files", OptionList).focus()

    # ---- form ------------------------------------------------------------------------------------------
    def load_source(self, source: JobSource) -> None:
        """Fill the form from a job source's own values, then validate."""
        from nasapp.engine.jobs.demo import demo_job

        self.source = source
        try:
            raw = demo_job() if source.path is None else read_job_file(source.path)
        except NasappError as error:
            self._request += 1  # whatever is still running was about another source
            self._requested = None
            self.validating = False
            self._show(None, str(error))
            return
        search = raw.get("search", {}) if isinstance(raw.get("search"), dict) else {}
        strategy = raw.get("strategy", {}) if isinstance(raw.get("strategy"), dict) else {}
        self.query_one("#name", Input).value = str(raw.get("name", ""))
        self.query_one("#max_trials", Input).value = str(search.get("max_trials", ""))
        self.query_one("#parallel", Input).value = str(search.get("parallel", ""))
        executor = search.get("executor", EXECUTORS.default)
        if executor in EXECUTORS:
            self.query_one("#executor", Select).value = executor
        name = strategy.get("name", STRATEGIES.default)
        if name in STRATEGIES:
            self.query_one("#strategy", Select).value = name
        self.validate_now()

    def form_values(self) -> dict[str, Any]:
        value = self.query_one("#strategy", Select).value
        return {
            "name": self.query_one("#name", Input).value,
            "max_trials": self.query_one("#max_trials", Input).value,
            "parallel": self.query_one("#parallel", Input).value,
            "strategy": value if isinstance(value, str) else None,
            "executor": executor if isinstance(executor := self.query_one("#executor", Select).value, str) else None,
        }

    def _form_key(self) -> FormKey:
        return self.source, tuple(self.form_values().items())

    def _form_changed(self) -> None:
        """An edit: validate a moment after the last one (the change events of load_source change nothing)."""
        if self._form_key() == self._requested:
            return
        self._launch_when_valid = False
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_AFTER_S, self.validate_now)

    def validate_now(self) -> None:
        """Validate the form as it is now, unless that is being or has been done."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        key = self._form_key()
        if key == self._requested:
            return
        self._requested = key
        self._request += 1
        self.validating = True
        self._validate(self._request, self.source.path, self.form_values())

    @work(thread=True, group="validate", exit_on_error=False)
    def _validate(self, request: int, path: Path | None, values: dict[str, Any]) -> None:
        try:
            checked, error = check_job(path, **values), None
        except NasappError as problem:
            checked, error = None, str(problem)
        except Exception as problem:  # noqa: BLE001 - a user's code (trainer.ref, space.ref) shown, not a crash
            checked, error = None, f"{type(problem).__name__}: {problem}"
        try:
            self.post_message(self.Validated(request, checked, error))
        except RuntimeError:  # the dashboard closed meanwhile
            pass

    def on_new_job_screen_validated(self, message: Validated) -> None:
        if message.request != self._request:
            return  # the form changed since
        self.validating = False
        self._show(message.checked, message.error)
        if self._launch_when_valid:
            self._launch()

    def watch_validating(self, validating: bool) -> None:
        self.query_one("#form").border_subtitle = "checking …" if validating else ""

    def _show(self, checked: Checked | None, error: str | None) -> None:
        self.checked, self.error = checked, error
        self.set_class(checked is None, "-invalid")
        self.query_one("#errors", Static).update(f"[b]error:[/b] {escape(error)}" if error else "")
        source = self.source.path or DEMO
        if checked is None:
            self.query_one("#preview", Static).update(f"from {escape(str(source))}")
            return
        spec = checked.spec
        trainer = spec.trainer.prebuilt or spec.trainer.ref or " ".join(spec.trainer.command or [])
        data = "-" if spec.data is None else spec.data.kind
        if isinstance(spec.data, FileData) and spec.data.path:
            data += f" {spec.data.path}"
        latency = spec.latency.device if spec.latency.enabled else "not measured"
        notes = "".join(f"\nnote: {note}" for note in checked.notes)
        self.query_one("#preview", Static).update(escape(
            f"valid: {spec.name}\nspace {spec.space.label} ({checked.space_size})\ntrainer {trainer}"
            f" ({spec.trainer.steps} steps)\ndata {data}\nreward {spec.reward.direction}"
            f" {spec.reward.formula or spec.reward.metric}\nlatency {latency}\nfrom {source}{notes}"))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "path":
            self._form_changed()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._form_changed()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "path":
            text = event.value.strip()
            if not text:
                return
            path = Path(text).expanduser().resolve()
            self.load_source(JobSource(str(path), path))
        else:
            self.action_launch()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.load_source(self.sources[int(event.option.id or 0)])
        self.query_one("#name", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()

    # ---- launch ----------------------------------------------------------------------------------------
    def action_launch(self) -> None:
        """Launch once the form as it is now is validated (at once when it already is)."""
        self._launch_when_valid = True
        self.validate_now()
        if not self.validating:
            self._launch()

    def _launch(self) -> None:
        self._launch_when_valid = False
        checked = self.checked
        if checked is None:
            self.notify(f"not launched: {escape(self.error or '')}", severity="error", timeout=8)
            return
        folder = launch_dir(self.nas.store)
        job_file = write_job_file(checked.spec, folder)
        log = job_file.with_suffix(".log")
        process = launch_detached(["run", str(job_file), "--db", str(self.nas.store.path)], log)
        self.launched = (process, job_file, log)
        self.nas.watch_launch(process, log, f"job {escape(checked.spec.name)}")
        self.notify(escape(f"launched {checked.spec.name} (runner pid {process.pid}); it appears on the jobs"
                           f" screen in a moment. Output: {log}"), timeout=8)
        self.app.pop_screen()


def _searching_strategies() -> list[str]:
    """The strategies a new search can pick: not those that only serve a tool (copies, given)."""
    return [name for name in STRATEGIES.names() if not getattr(STRATEGIES.get(name).make, "tool_only", False)]
