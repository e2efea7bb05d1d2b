"""Prebuilt trainers: ``train(arch, ctx) -> dict`` functions a job names with ``[trainer] prebuilt``."""
