"""The latency service's persistent cache: measurements by architecture fingerprint, in one JSON file.

The file is ``{"format": ..., "settings": ..., "results": {fingerprint: metrics}}``, rewritten atomically after
each new measurement, so a resumed job keeps its measurements. A file written under other measurement settings
(the keys in :data:`SETTINGS_KEYS`) or unreadable is not reused: the cache starts empty.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasapp.engine.latency.settings import setting

log = logging.getLogger(__name__)

CACHE_FORMAT = "nasapp.latency-cache/1"
# settings that change what a measurement means: a cache written under other settings is not reused
SETTINGS_KEYS = ("device", "command", "batch_size", "threads", "warmup", "runs", "opset", "pin_cores")


def settings_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the latency settings a cache file must match to be reused."""
    return {key: setting(spec, key) for key in SETTINGS_KEYS}


class LatencyCache:
    """Metrics by fingerprint, loaded from ``path`` when it matches ``spec`` and saved there on each :meth:`put`."""

    def __init__(self, path: str | os.PathLike[str], spec: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.settings = settings_key(spec)
        self.results: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("latency cache %s unreadable (%s); starting an empty one", self.path, error)
            return {}
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT \
                or data.get("settings") != self.settings or not isinstance(data.get("results"), dict):
            log.info("latency cache %s was written under other settings; not reused", self.path)
            return {}
        return dict(data["results"])

    def get(self, fingerprint: str) -> dict[str, Any] | None:
        """A copy of the metrics of ``fingerprint``, or None."""
        found = self.results.get(fingerprint)
        return dict(found) if found is not None else None

    def put(self, fingerprint: str, metrics: dict[str, Any]) -> None:
        """Remember ``metrics`` for ``fingerprint`` and rewrite the file (atomically)."""
        self.results[fingerprint] = metrics
        self.save()

    def save(self) -> None:
        document = {"format": CACHE_FORMAT, "settings": self.settings, "results": self.results}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(document, indent=1, sort_keys=True))
        os.replace(partial, self.path)
