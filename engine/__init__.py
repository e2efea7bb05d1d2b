"""The NAS engine: search spaces, strategies, the worker pool, trainers and the runner. No UI code here."""
