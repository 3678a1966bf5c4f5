"""Benchmarks behind ``lartpcnet bench``: tables in the terminal, Markdown/JSON/PNG in benchmarks/results/."""
