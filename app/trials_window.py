"""The trials table's rows, read a window at a time (no UI code here).

The store filters and sorts (`store.queries.ordered_trial_ids`); the window keeps only that list of ids and
reads, formats and caches the rows the table draws, a page at a time. When the data changes the pages on
screen are read again; the id list follows new trials at once in the default view (every trial by number:
new trials come last), and in any other view it is queried again, at most every second on a big job, and no
more often than ten times what the query costs (a sort by a metric over 100,000 trials is a scan).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from nasapp.app.trials_model import TrialsModel, tone
from nasapp.app.widgets import TableRow
from nasapp.store import Store
from nasapp.store.queries import Condition, ordered_trial_ids, trials_by_ids
from nasapp.store.records import Trial

PAGE = 64  # rows read and formatted at once
MAX_PAGES = 16  # pages kept (a screenful is one or two)
THROTTLE_FROM = 1000  # rows: from here on the id list is re-queried at most once per `interval_s`


class TrialsWindow(Sequence):
    """The table's rows for one view (status filter, sort column, direction, the filter's conditions: see
    app/trial_filter.py): a Sequence of TableRow whose
    rows are read from the store when first drawn. `ids` holds every row's trial id, in table order."""

    def __init__(self, store: Store, model: TrialsModel) -> None:
        self.store = store
        self.model = model
        self.view: tuple[str, str, bool, tuple[Condition, ...]] | None = None  # the view `ids` is for
        self.ids: list[int] = []
        self.stale = False  # the data changed since `ids` was queried
        self.interval_s = 1.0
        self.queried_at = 0.0
        self.query_s = 0.0  # what the last query of the id list cost
        self._pages: dict[int, list[TableRow]] = {}

    # ---- the id list -------------------------------------------------------------------------------------
    def show(self, status: str, sort: str, reverse: bool, data_changed: bool = True,
             conditions: tuple[Condition, ...] = ()) -> None:
        """Make the window show a view; after a change of the data, the rows are read again and the id list
        follows (see the module docstring). A bad condition raises ValueError (the view stays as it was)."""
        self._pages.clear()
        view = (status, sort, reverse, conditions)
        if view != self.view:
            self._query(view)
        elif data_changed and status == "all" and sort == "number" and not conditions:
            new = sorted(self.model.new_ids)
            if reverse:
                self.ids[:0] = new[::-1]
            else:
                self.ids.extend(new)
        elif data_changed:
            self.stale = True
            self.catch_up()

    def catch_up(self) -> bool:
        """Query the id list again if the data changed and the throttle allows; True when it did."""
        if not self.stale or self.view is None:
            return False
        waited = time.monotonic() - self.queried_at
        if len(self.ids) >= THROTTLE_FROM and waited < max(self.interval_s, 10 * self.query_s):
            return False
        self._pages.clear()
        self._query(self.view)
        return True

    def _query(self, view: tuple[str, str, bool, tuple[Condition, ...]]) -> None:
        status, sort, reverse, conditions = view
        started = time.perf_counter()
        self.ids = ordered_trial_ids(self.store, self.model.job_id, None if status == "all" else status, sort,
                                     reverse, conditions)
        self.query_s = time.perf_counter() - started
        self.queried_at = time.monotonic()
        self.view, self.stale = view, False

    # ---- the rows ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.ids)))]
        if index < 0:
            index += len(self.ids)
        page = self._pages.get(index // PAGE) or self._read_page(index // PAGE)
        return page[index % PAGE]

    def _read_page(self, page: int) -> list[TableRow]:
        ids = self.ids[page * PAGE:(page + 1) * PAGE]
        found = {trial.id: trial for trial in trials_by_ids(self.store, self.model.job_id, ids)}
        rows = [self._row(trial_id, found.get(trial_id)) for trial_id in ids]
        if len(self._pages) >= MAX_PAGES:
            self._pages.clear()
        self._pages[page] = rows
        return rows

    def _row(self, trial_id: int, trial: Trial | None) -> TableRow:
        if trial is None:  # gone since the id list was read (a deleted job)
            return TableRow(trial_id, ("?",), "muted")
        return TableRow(trial_id, self.model.cells(trial), tone(trial))

    def trial(self, trial_id: int) -> Trial | None:
        found = trials_by_ids(self.store, self.model.job_id, [trial_id])
        return found[0] if found else None
