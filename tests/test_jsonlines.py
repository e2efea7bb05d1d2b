"""engine/execution/jsonlines.py: the non-blocking JSON-lines reader, on real pipes (no sleeps, no threads), and
the worker pool's use of it."""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator

import pytest

from nasapp.engine.execution import jsonlines
from nasapp.engine.execution.jsonlines import BadLine, JsonLinesReader
from nasapp.engine.execution.pool import Slot, WorkerPool, WorkerProcess


@pytest.fixture
def pipe() -> Iterator[tuple[JsonLinesReader, int]]:
    read_fd, write_fd = os.pipe()
    fds = {read_fd, write_fd}
    yield JsonLinesReader(read_fd), write_fd
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass  # a test closed its write end already


def test_an_empty_pipe_returns_nothing_without_blocking(pipe):
    reader, _ = pipe
    assert not os.get_blocking(reader.fd)
    assert reader.read_available() == ([], False)


def test_a_line_split_across_writes_comes_back_once_complete(pipe):
    reader, write_fd = pipe
    os.write(write_fd, b'{"type": "rep')
    assert reader.read_available() == ([], False)
    os.write(write_fd, b'ort", "step": 1}\n{"type"')
    assert reader.read_available() == ([{"type": "report", "step": 1}], False)
    os.write(write_fd, b': "done"}\n')
    assert reader.read_available() == ([{"type": "done"}], False)


def test_several_lines_in_one_chunk_come_back_in_order_and_blank_lines_are_skipped(pipe):
    reader, write_fd = pipe
    os.write(write_fd, b'{"id": 1}\n\n  \n[2, 3]\n"four"\n5\n')
    assert reader.read_available() == ([{"id": 1}, [2, 3], "four", 5], False)


def test_a_bad_line_comes_back_in_its_place_and_does_not_stop_the_rest(pipe):
    reader, write_fd = pipe
    os.write(write_fd, b'{"id": 1}\nTraceback (most recent call last):\n\xff\xfe{}\n{"id": 2}\n')
    messages, eof = reader.read_available()
    assert not eof
    assert messages[0] == {"id": 1} and messages[3] == {"id": 2}
    assert isinstance(messages[1], BadLine) and messages[1].text == "Traceback (most recent call last):"
    assert isinstance(messages[2], BadLine) and messages[2].text.endswith("{}")  # not UTF-8: still no raise
    assert messages[1].error


def test_end_of_file_decodes_a_last_unterminated_line_and_stays_ended(pipe):
    reader, write_fd = pipe
    os.write(write_fd, b'{"id": 1}\n{"id": 2}')
    assert reader.read_available() == ([{"id": 1}], False)
    os.close(write_fd)
    assert reader.read_available() == ([{"id": 2}], True)
    assert reader.read_available() == ([], True)
    assert reader.eof


def test_end_of_file_with_a_truncated_line_returns_it_as_a_bad_line(pipe):
    reader, write_fd = pipe
    os.write(write_fd, b'{"id": 1}\n{"id": ')
    os.close(write_fd)
    messages, eof = reader.read_available()
    assert eof and messages[0] == {"id": 1}
    assert isinstance(messages[1], BadLine) and messages[1].text == '{"id": '


def test_end_of_file_on_an_empty_pipe(pipe):
    reader, write_fd = pipe
    os.close(write_fd)
    assert reader.read_available() == ([], True)


def test_a_line_longer_than_the_pipe_holds_arrives_whole(pipe):
    reader, write_fd = pipe
    os.set_blocking(write_fd, False)
    data = (json.dumps({"blob": "x" * 300_000}) + "\n").encode()
    received: list = []
    while data:
        try:
            data = data[os.write(write_fd, data):]
        except BlockingIOError:
            pass  # the pipe is full: the reader drains it below
        messages, eof = reader.read_available()
        assert not eof
        received.extend(messages)
    received.extend(reader.read_available()[0])
    assert received == [{"blob": "x" * 300_000}]


def test_one_call_reads_a_bounded_amount_and_the_rest_waits_for_the_next(pipe, monkeypatch):
    reader, write_fd = pipe
    monkeypatch.setattr(jsonlines, "CHUNK_BYTES", 4)
    monkeypatch.setattr(jsonlines, "MAX_BYTES_PER_CALL", 8)
    os.write(write_fd, b"[1]\n[2]\n[3]\n")
    assert reader.read_available() == ([[1], [2]], False)
    assert reader.read_available() == ([[3]], False)
    assert reader.read_available() == ([], False)


def test_the_worker_pool_reports_a_line_that_is_not_a_message(tmp_path, caplog):
    """A worker that writes garbage on its message pipe costs a warning and a bad_message event for its trial
    (the runner fails that trial), never the runner."""
    pool = WorkerPool([], tmp_path / "workers.log")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    worker = WorkerProcess(Slot(0, "cpu", threads=1), proc, read_fd, trial=7)
    pool.workers = [worker]
    pool.selector.register(read_fd, selectors.EVENT_READ, worker)
    try:
        caplog.set_level(logging.WARNING, logger="nasapp.engine.execution.pool")
        os.write(write_fd, b'Segmentation fault\n[1, 2]\n{"no": "type"}\n{"type": "done", "trial": 7}\n')
        events = [message for _, message in pool.poll(5)]
        assert [e["type"] for e in events] == ["bad_message"] * 3 + ["done"]
        assert events[0] == {"type": "bad_message", "trial": 7, "text": "Segmentation fault"}
        assert worker.trial is None
        assert caplog.text.count("not a message") == 3 and "Segmentation fault" in caplog.text
    finally:
        pool.selector.unregister(read_fd)
        os.close(write_fd)
        os.close(read_fd)
        proc.stdin.close()
        proc.wait()
