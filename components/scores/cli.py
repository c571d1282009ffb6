"""``app.py score NAME --model PATH_OR_HUB_ID``: a reward model scores every selected pair.

It spends compute, so it is an admin's action: on the command line it runs as the machine's user
(who owns the database file); on the page only admins reach it. Nothing heavy is imported here at
module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from .. import catalogue


def add_arguments(s: argparse.ArgumentParser) -> None:
    from ..jobs.cli import add_job_arguments

    s.add_argument("name", help="dataset name (pairs)")
    s.add_argument("--model", required=True, metavar="PATH_OR_HUB_ID",
                   help="a reward model: any AutoModelForSequenceClassification with one output")
    s.add_argument("--device", metavar="DEVICE", help="cpu or cuda (default: cuda when there is one)")
    s.add_argument("--max-length", type=int, metavar="N", help="longest conversation in tokens (default: the model's)")
    add_job_arguments(s, batch_default=16)


def score_command(db, args) -> int:
    from ..jobs.cli import run_job_command
    from .reward import ScoreError, reward_step
    from .store import score_counts

    info = catalogue.dataset(db, args.name)
    if info is None:
        print(f"error: no dataset named {args.name[:100]!r}", file=sys.stderr)
        return 1
    if info.kind != "pairs":
        print(f"error: {info.name} holds {info.kind}, not pairs: a reward model scores both sides of a pair",
              file=sys.stderr)
        return 1
    try:
        step = reward_step(args.model, device=args.device, max_length=args.max_length)
    except ScoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rc, result = run_job_command(db, step, args, noun="pairs",
                                 what=f"{info.name} scored by {step.model} ({step.revision})")
    if result is None:
        return rc
    scored = score_counts(db, info.name, info.version, step.model, step.revision)
    summary = result.as_dict() | {"dataset": info.name, "dataset_version": info.version, "model": step.model,
                                  "model_revision": step.revision, "scored": scored}
    if args.json:
        print(json.dumps(summary))
    else:
        print(result.describe().replace("rows", "pairs") + f" · {scored} pairs of {info.name} scored by this model")
    return 0 if result.status in ("done", "cancelled") else 1


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``score`` command's parser; it runs as ``run(db, args)``."""
    s = sub.add_parser("score", parents=[common], help="a reward model scores both sides of every pair (admin)")
    add_arguments(s)
    s.set_defaults(run=score_command)
