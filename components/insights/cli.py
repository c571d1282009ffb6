"""``app.py stats NAME`` and ``app.py contamination TRAIN --against EVAL``: a dataset's statistics in
plain text or JSON; evaluation prompts found in training data."""

from __future__ import annotations

import argparse
import json
import sys

from ..text import fail


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The insights commands' parsers; each runs as ``run(db, args)``."""
    s = sub.add_parser("stats", parents=[common], help="statistics of a dataset of pairs (lengths, length bias, "
                                                         "ratings, duplicates, metadata, labels)")
    s.add_argument("name", help="dataset name")
    s.add_argument("--unit", choices=["chars", "words", "tokens"], help="unit of the length histograms")
    s.add_argument("--tokenizer", metavar="PATH", help="a local tokenizer folder or tokenizer.json: token lengths")
    s.add_argument("--model", metavar="NAME", help="the reward model whose accuracy by length difference is shown "
                                                  "(default: the first that scored the dataset)")
    s.add_argument("--json", action="store_true", help="print every statistic as one JSON object")
    s.set_defaults(run=stats_command)

    s = sub.add_parser("contamination", parents=[common],
                       help="find evaluation prompts inside a training set (word n-gram overlap)")
    s.add_argument("train", help="the training dataset")
    s.add_argument("--against", required=True, metavar="EVAL", help="evaluation dataset(s), comma-separated")
    s.add_argument("--n", type=int, default=8, help="words per n-gram (default 8)")
    s.add_argument("--field", default="prompt", choices=["prompt", "chosen", "rejected", "text"],
                   help="the training rows' field to check (default prompt)")
    s.add_argument("--threshold", type=float, default=0.0, help="only rows scoring this or more (0 to 1)")
    s.add_argument("--out", metavar="FILE", help="write the clean subset (rows below --threshold) as JSON lines")
    s.add_argument("--json", action="store_true", help="print the matches as a JSON list")
    s.set_defaults(run=contamination_command)


def stats_command(db, args) -> int:
    from .. import insights

    try:
        tokenizer = insights.load_tokenizer(args.tokenizer) if args.tokenizer else None
        stats = insights.dataset_stats(db, args.name, unit=args.unit or ("tokens" if tokenizer else "chars"),
                                       tokenizer=tokenizer, model=args.model)
        rm = stats["reward_model"]
        if args.model and args.model != rm.get("model"):
            raise insights.StatsError(f"{args.model!r} has not scored {args.name}"
                                      + (f"; scored by: {', '.join(rm['models'])}" if rm["models"] else ""))
    except insights.StatsError as err:
        return fail(err)
    if args.json:
        print(json.dumps(stats, default=str))
        return 0
    print("\n".join(insights.describe_stats(stats)))
    return 0


def contamination_command(db, args) -> int:
    from .. import insights

    try:
        result = insights.find_contamination(db, args.train, args.against.split(","), n=args.n, fld=args.field,
                                             threshold=args.threshold, limit=None if (args.json or args.out) else 1000)
        if args.out:
            kept = insights.export_clean(db, args.train, [m.row for m in result.matches], args.out)
            print(f"wrote {kept:,} rows to {args.out} ({len(result.matches):,} suspects at score >= "
                  f"{args.threshold} left out)", file=sys.stderr)
    except insights.ContaminationError as err:
        return fail(err)
    if args.json:
        print(json.dumps([m.as_dict() for m in result.matches]))
    elif not args.out:
        print(insights.describe(result))
    return 0
