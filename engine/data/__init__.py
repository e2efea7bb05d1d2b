"""Data sets for the prebuilt trainer: the ``[data]`` table's kinds (kinds.py) and their loading (loaders.py)."""
