"""``app.py ingest SOURCE`` and ``app.py datasets``: load a file, folder or Hub dataset; list what is loaded."""

from __future__ import annotations

import argparse
import json
import sys

from ..formats import DEFAULT_MAX_CHARS
from ..text import fail
from .. import catalogue


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ingest commands' parsers; each runs as ``run(db, args)``."""
    s = sub.add_parser("ingest", parents=[common], help="load a file, folder or Hugging Face dataset")
    s.add_argument("source", help="path (jsonl, jsonl.gz, json, parquet, csv, folder) or Hub dataset id")
    s.add_argument("--name", help="dataset name (default: from the source; a default name never replaces a "
                                  "dataset loaded from another source, an explicit one does)")
    s.add_argument("--split", help="split of a Hub dataset or save_to_disk folder (default train)")
    s.add_argument("--config", help="config of a Hub dataset")
    s.add_argument("--map", nargs="+", metavar="KEY=COLUMN",
                   help="explicit columns, e.g. --map prompt=question chosen=response_j rejected=response_k")
    s.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS,
                   help=f"reject rows longer than this (default {DEFAULT_MAX_CHARS:,} characters)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(run=ingest_command)

    s = sub.add_parser("datasets", parents=[common], help="list datasets")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=datasets_command)


def ingest_command(db, args) -> int:
    from ..ingest import IngestError, ingest

    def progress(frac, desc):
        if not args.json and sys.stderr.isatty():
            print(f"[{frac:4.0%}] {desc}", file=sys.stderr)

    try:
        summary = ingest(db, args.source, name=args.name, split=args.split, config=args.config,
                         mapping=args.map, max_chars=args.max_chars, progress=progress)
    except IngestError as err:
        return fail(err)
    print(json.dumps(summary.as_dict()) if args.json else summary.describe())
    return 0


def datasets_command(db, args) -> int:
    infos = catalogue.datasets(db)
    if args.json:
        from ..ingest import empty_side_counts

        flagged = empty_side_counts(db)
        print(json.dumps([d.as_dict() | {"empty_side_count": flagged.get(d.name, 0)} for d in infos]))
        return 0
    if not infos:
        print("no datasets; load one with: python app.py ingest SOURCE")
        return 0
    width = max(len(d.name) for d in infos)
    print(f"{'name':<{width}}  {'kind':<13}  {'rows':>9}  {'rejected':>8}  format")
    for d in infos:
        print(f"{d.name:<{width}}  {d.kind:<13}  {d.row_count:>9,}  {d.rejected_count:>8,}  {d.format}")
    return 0
