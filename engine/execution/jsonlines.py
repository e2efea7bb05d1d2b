"""Reading JSON lines from a pipe without blocking: the one reader behind the worker pool and the latency service.

Both talk to a child process that writes one JSON value per line. :class:`JsonLinesReader` holds the read end
of that pipe (made non-blocking) and the bytes of a line not finished yet; :meth:`JsonLinesReader.read_available`
returns the complete lines that have arrived, decoded, and whether the writer has closed the pipe. A line that
is not valid JSON never raises: it comes back, in its place among the messages, as a :class:`BadLine`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CHUNK_BYTES = 1 << 16
MAX_BYTES_PER_CALL = 1 << 20  # a writer that never pauses cannot keep one call reading forever


@dataclass(frozen=True)
class BadLine:
    """A line that is not valid JSON: its text (undecodable bytes replaced) and the decoder's complaint."""

    text: str
    error: str


class JsonLinesReader:
    """The read end of a JSON-lines pipe, read without ever blocking.

    The reader sets ``fd`` non-blocking and reads it with ``os.read`` only (never through a buffered file
    object). It does not close ``fd``: its owner does, after the end of file or when it is done with it.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.eof = False
        self._buffer = bytearray()
        os.set_blocking(fd, False)

    def read_available(self) -> tuple[list[Any | BadLine], bool]:
        """The lines that are complete now, decoded, and whether the writer has closed its end.

        Messages are the decoded JSON values in the order they were written, with a :class:`BadLine` in the
        place of each line that is not valid JSON; blank lines are skipped. Reads until the pipe is empty or
        closed (or 1 MiB has been read: the rest waits for the next call). At the end of file a last line without its
        newline is decoded like any other; every later call returns ``([], True)`` without reading.
        """
        if self.eof:
            return [], True
        messages: list[Any | BadLine] = []
        read = 0
        while read < MAX_BYTES_PER_CALL:
            try:
                chunk = os.read(self.fd, CHUNK_BYTES)
            except BlockingIOError:
                break
            except OSError:  # the fd is gone or broken: nothing more will come
                chunk = b""
            if not chunk:
                self.eof = True
                tail, self._buffer = bytes(self._buffer), bytearray()
                self._decode([tail], messages)
                break
            read += len(chunk)
            self._buffer += chunk
            if b"\n" in chunk:
                *lines, rest = self._buffer.split(b"\n")
                self._buffer = rest
                self._decode(lines, messages)
        return messages, self.eof

    @staticmethod
    def _decode(lines: Iterable[bytes | bytearray], into: list[Any | BadLine]) -> None:
        for line in lines:
            if not line.strip():
                continue
            try:
                into.append(json.loads(line))
            except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
                into.append(BadLine(line.decode(errors="replace"), str(error)))
