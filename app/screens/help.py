"""The help screen (`?`): what the current screen shows, and every key that works on it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

GENERAL = """\
## Everywhere

| key | does |
| --- | --- |
| `?` | this help |
| `ctrl+p` | command palette: find screens, jobs and actions by name |
| `tab` / `shift+tab` | move between panels |
| `escape` | back (and closes this help) |
| `q` | quit (running searches go on: the dashboard only reads the store) |

The mouse works too: click a row to highlight it, click it again to open it, click a column's header
to sort by it.
"""


def key_table(screen: Screen) -> str:
    """The keys active on `screen` (its focused widget's, its own and the app's) as a Markdown table."""
    rows = []
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.description or binding.system or binding.description in seen:
            continue
        seen.add(binding.description)
        display = screen.app.get_key_display(binding)
        state = "" if active.enabled else " (not available now)"
        rows.append(f"| `{display}` | {binding.description}{state} |")
    return "| key | does |\n| --- | --- |\n" + "\n".join(rows) if rows else ""


class HelpScreen(ModalScreen[None]):
    """Help for the screen beneath: its description and its keys, then the keys that work everywhere."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close help"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%; border: thick $primary; background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        text = getattr(self.for_screen, "HELP", "") or ""
        keys = key_table(self.for_screen)
        body = text + ("\n### Keys on this screen\n\n" + keys + "\n" if keys else "") + "\n" + GENERAL
        with VerticalScroll():
            yield Markdown(body, id="help-text")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
