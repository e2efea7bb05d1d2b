"""The registry of executors (``[search] executor = "..."``). Adding one = its module + one line here."""

from __future__ import annotations

from nasapp.engine.execution import local, ray_executor
from nasapp.engine.execution.executor import Executor, ExecutorEntry, SearchSpec
from nasapp.engine.registry import Registry

EXECUTORS: Registry[ExecutorEntry] = Registry("executor", "search.executor", default="local")
EXECUTORS.register(local.ENTRY)
EXECUTORS.register(ray_executor.ENTRY)

__all__ = ["EXECUTORS", "Executor", "ExecutorEntry", "SearchSpec"]
