"""Data sets for the prebuilt trainer: the registry of data kinds and their loaders."""
