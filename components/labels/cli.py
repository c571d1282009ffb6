"""``app.py export NAME`` and ``app.py settings NAME``: pairs with their labels applied (TRL formats) or
the label log; a labeling project's overlap, guidelines, blind mode and gold pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..policies import cli_name
from ..text import fail
from . import binarized


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The labels commands' parsers; each runs as ``run(db, args)``."""
    s = sub.add_parser("export", parents=[common],
                       help="write a dataset's pairs with their labels applied (TRL preference format), or its label log")
    s.add_argument("name", help="dataset name")
    s.add_argument("--out", required=True, help="output file: .jsonl or .parquet")
    s.add_argument("--format", choices=["conversational", "standard"], default="conversational",
                   help="TRL preference format: message lists (conversational, default) or strings (standard)")
    who = s.add_mutually_exclusive_group()
    who.add_argument("--annotator", metavar="A", help="apply this annotator's labels (default: the majority)")
    who.add_argument("--majority", action="store_true",
                     help="apply the majority label of all annotators: the judgment with more votes than any "
                          "other, skips not voting (the default when --annotator is not given)")
    who.add_argument("--persona", metavar="P",
                     help="the pairs of persona P (revised for it, or labeled as it by people or judges) with its "
                          "system message first in the prompt")
    who.add_argument("--all-personas", action="store_true",
                     help="every persona's pairs, one row per pair and persona (a persona column says which)")
    s.add_argument("--labeled-only", action="store_true", help="leave out pairs without a label")
    s.add_argument("--keep-ties", action="store_true",
                   help="keep pairs labeled tie, both bad, skip or without a majority (as in the source)")
    s.add_argument("--labels-log", action="store_true", help="write the raw label log (every event) instead")
    s.add_argument("--with-scores", action="store_true",
                   help="add score_chosen, score_rejected and margin columns from a reward model's stored scores "
                        "(TRL's RewardTrainer reads margin); pairs it has not scored are left out")
    s.add_argument("--score-model", metavar="M", help="the model whose scores to use (default: the only one)")
    s.add_argument("--min-margin", metavar="X", type=float,
                   help="keep only pairs whose margin (score of the written chosen minus rejected) is at least X")
    s.add_argument("--with-grades", action="store_true",
                   help="a graded label schema: margin from the graded strength (TRL's RewardTrainer) and an "
                        "aspect_NAME column per aspect; pairs without a grade are left out")
    binarized.add_binarize_arguments(s)
    s.add_argument("--push-to-hub", metavar="REPO", help="also push the file to this Hub dataset repo (needs HF_TOKEN)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(run=export_command)

    s = sub.add_parser("settings", parents=[common],
                       help="a dataset's labeling project: overlap, guidelines, blind labeling, gold pairs; progress")
    s.add_argument("name", help="dataset name (pairs)")
    s.add_argument("--overlap", metavar="K", help="annotators each pair needs (0: everyone labels every pair)")
    s.add_argument("--guidelines", metavar="FILE.md", help="Markdown shown beside each pair (a new version)")
    blind = s.add_mutually_exclusive_group()
    blind.add_argument("--blind", dest="blind", action="store_true", default=None,
                       help="show the sides as A and B, in an order drawn per pair")
    blind.add_argument("--no-blind", dest="blind", action="store_false", help="show chosen and rejected")
    s.add_argument("--gold", dest="file", metavar="FILE",
                   help="mark gold pairs from JSON lines or CSV with the columns row and label (note optional)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(run=settings_command)


def export_command(db, args) -> int:
    from .. import labels

    if args.labels_log and (args.annotator or args.majority):
        return fail("--labels-log writes every event of every annotator: leave out --annotator and --majority")
    annotator = None if args.majority else args.annotator  # no --annotator: the majority as well
    by_persona = args.persona is not None or args.all_personas
    recipe = binarized.binarize_options(args)
    if recipe and (args.labels_log or by_persona or args.majority or args.with_scores or args.score_model
                   or args.min_margin is not None or args.with_grades or args.labeled_only or args.keep_ties):
        return fail("--binarize writes the pairs a recipe makes of N responses: it goes with --from, --seed, "
                    "--format and (with --from rankings) --annotator alone")
    if args.with_grades and (args.labels_log or by_persona or args.with_scores or args.score_model
                             or args.min_margin is not None):
        return fail("--with-grades goes with an export of pairs, without --with-scores, --score-model and "
                    "--min-margin (a margin comes from the grades or from a reward model, not both)")
    if (args.with_scores or args.score_model or args.min_margin is not None) and (args.labels_log or args.persona
                                                                               or args.all_personas):
        return fail("--with-scores, --score-model and --min-margin go with an export of pairs: leave out "
                     "--labels-log, --persona and --all-personas")
    if by_persona and (args.labels_log or args.labeled_only or args.keep_ties):
        return fail("--persona and --all-personas write each persona's labeled or revised pairs: leave out "
                     "--labels-log, --labeled-only and --keep-ties")
    try:
        if recipe:
            summary = binarized.export_binarized(db, args.name, args.out, **recipe)
        elif args.labels_log:
            summary = labels.export_log(db, args.name, args.out)
        elif by_persona:
            from .. import personas

            try:
                summary = personas.export_persona_pairs(db, args.name, args.out, args.persona, style=args.format)
            except personas.PersonaError as err:
                return fail(err)
        else:
            summary = labels.export_pairs(db, args.name, args.out, style=args.format, annotator=annotator,
                                          labeled_only=args.labeled_only, keep_ties=args.keep_ties,
                                          with_scores=args.with_scores, score_model=args.score_model,
                                          min_margin=args.min_margin, with_grades=args.with_grades)
        result = summary.as_dict()
        if args.push_to_hub:
            result["hub_url"] = labels.push_to_hub(args.out, args.push_to_hub)
    except labels.LabelError as err:
        return fail(err)
    print(json.dumps(result) if args.json else summary.describe()
          + (f"\npushed to {result['hub_url']}" if result.get("hub_url") else ""))
    return 0


def settings_command(db, args) -> int:
    from .. import labels

    who = cli_name(args)
    try:
        info = labels.check_pairs(db, args.name)
        if args.overlap is not None:
            labels.set_setting(db, info.name, "overlap", args.overlap, who)
        if args.guidelines:
            try:
                text = Path(args.guidelines).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                return fail(f"cannot read {args.guidelines}: {getattr(err, 'strerror', None) or err}")
            labels.set_setting(db, info.name, "guidelines", text, who)
        if args.blind is not None:
            labels.set_setting(db, info.name, "blind", args.blind, who)
        marked = labels.import_gold(db, info.name, args.file, who) if args.file else 0
        now = labels.project_settings(db, info.name)
        progress = labels.project_progress(db, info.name)
    except labels.LabelError as err:
        return fail(err)
    if args.json:
        print(json.dumps(now | {"dataset": info.name, "gold_marked": marked, "progress": progress}, default=str))
        return 0
    lines = [f"{info.name}: overlap {now['overlap'] or 'none (everyone labels every pair)'} · blind "
             f"{'on' if now['blind'] else 'off'} · guidelines "
             + (f"version {now['guidelines_version']} ({len(now['guidelines']):,} characters)" if now["guidelines"]
                else "none")]
    if marked:
        lines.append(f"marked {marked:,} gold pair{'s' if marked != 1 else ''}")
    lines.append(labels.progress_line(progress))
    print("\n".join(lines))
    return 0
