"""Insights: what a dataset of pairs holds, at a glance, and whether evaluation prompts leaked into it.

``stats`` computes the statistics of one dataset in DuckDB (cached per dataset version), with
``duplicates`` (exact and MinHash near duplicates) and ``labelstats`` (the labels part);
``bins`` makes every bar an SQL predicate, so ``rows_for`` returns exactly the rows of a bar;
``contamination`` finds evaluation prompts inside training rows by word n-grams; ``accuracy`` is a
reward model's accuracy per length-difference bin (against the data and the people's majority);
``projection`` maps the stored embeddings onto two dimensions (PCA); ``charts`` draws the statistics
as plotly figures.
"""

from .contamination import (
    ContaminationError, Match, Result, describe, export_clean, find_contamination, highlight, suspect_rows,
    suspects_query,
)
from .summary import describe_stats
from .stats import UNITS, BinRows, StatsError, dataset_stats, load_tokenizer, rows_for

__all__ = ["ContaminationError", "describe_stats", "Match", "Result", "describe", "export_clean", "find_contamination", "highlight",
           "suspect_rows", "suspects_query",
           "UNITS", "BinRows", "StatsError", "dataset_stats", "load_tokenizer", "rows_for"]
