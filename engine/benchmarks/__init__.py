"""Tabular NAS benchmarks: replay a table of (architecture, metric) rows as the trainer, many seeds per
strategy, against random search (`nasapp bench`)."""
