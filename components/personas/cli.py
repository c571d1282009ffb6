"""``app.py personas`` and ``app.py judge NAME --persona P``: the persona library; a model labels pairs as
a persona, or with ``--ratings`` rates both replies 1-10 (stored as scores, ``personas/ratings.py``)."""

from __future__ import annotations

import argparse
import json
import sys

from ..policies import cli_name
from ..text import fail


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The personas commands' parsers; each runs as ``run(db, args)``."""
    s = sub.add_parser("personas", parents=[common],
                       help="the persona library: list, show NAME, add FILE (JSON lines), export FILE")
    s.add_argument("action", choices=["list", "show", "add", "export"])
    s.add_argument("target", nargs="?", metavar="NAME_OR_FILE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=personas_command)

    s = sub.add_parser("judge", parents=[common],
                       help="a model role-plays a persona and labels pairs (annotator sim-PERSONA@MODEL)")
    s.add_argument("name", help="dataset name (pairs)")
    s.add_argument("--persona", action="append", required=True, metavar="P", help="persona to role-play (repeatable)")
    s.add_argument("--model", required=True, metavar="PATH_OR_ID",
                   help="a local folder or Hub id (local transformers), or the model name an --endpoint serves")
    s.add_argument("--endpoint", metavar="URL", help="an OpenAI-compatible server, e.g. http://localhost:8000/v1")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--rows", help="pairs to judge, e.g. 0-99 or 3,7 (default: from the first)")
    which.add_argument("--limit", type=int, metavar="N", help="judge the first N pairs")
    s.add_argument("--again", action="store_true", help="judge pairs this judge labeled before again")
    s.add_argument("--ratings", action="store_true",
                   help="rate each reply 1-10 instead of a verdict; stored as scores of sim-PERSONA@MODEL[:PRINCIPLES]")
    s.add_argument("--principles", metavar="ID,...",
                   help="with --ratings: principles to rate against (default: the persona's own needs)")
    s.add_argument("--max-new-tokens", type=int, default=32, metavar="N")
    s.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, metavar="N", help="pairs per forward pass")
    s.add_argument("--json", action="store_true", help="print one JSON list (one summary per persona)")
    s.set_defaults(run=judge_command)


def personas_command(db, args) -> int:
    from .. import personas

    try:
        if args.action == "list":
            found = personas.personas(db)
            if args.json:
                print(json.dumps([p.as_dict() for p in found]))
                return 0
            width = max([len(p.name) for p in found] or [4])
            for p in found:
                print(f"{p.name:<{width}}  v{p.version:<3} {' · '.join(v for _, v in p.attributes)[:100]}")
            return 0
        if not args.target:
            return fail(f"personas {args.action} needs a {'NAME' if args.action == 'show' else 'FILE'}")
        if args.action == "show":
            p = personas.resolve(db, args.target)
            if args.json:
                print(json.dumps(p.as_dict() | {"history": personas.persona_history(db, p.name)}, default=str))
            else:
                print(f"{p.name} (version {p.version})\n{p.profile()}\n\nsystem message:\n{p.system_message}")
            return 0
        if args.action == "add":
            counts = personas.import_personas(db, args.target, author=cli_name(args))
            print(json.dumps(counts) if args.json else
                  ", ".join(f"{n} {what}" for what, n in counts.items()) + f" from {args.target}")
            return 0
        n = personas.write_personas(personas.personas(db), args.target)
        print(json.dumps({"written": n, "out": args.target}) if args.json else f"wrote {n} personas to {args.target}")
        return 0
    except personas.PersonaError as err:
        return fail(err)


def judge_command(db, args) -> int:
    from .. import labels, personas, revise

    if args.ratings and args.again:
        return fail("--again goes with verdicts: a judge's ratings are kept; a new persona version, principle "
                    "or setting rates afresh")
    if args.principles and not args.ratings:
        return fail("--principles goes with --ratings")
    out = []
    try:
        settings = revise.Settings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                   seed=args.seed, batch_size=args.batch_size).checked()
        chosen = [personas.resolve(db, n) for n in dict.fromkeys(args.persona)]
        labels.check_pairs(db, args.name)
        principles = revise.resolve_principles(db, args.principles) if args.principles else []
        backend = revise.make_backend(args.model, args.endpoint)
        for p in chosen:
            def progress(done, total, name=p.name):
                print(f"[{done}/{total}] judged as {name}", file=sys.stderr, flush=True)

            if args.ratings:
                summary = personas.rate_pairs(db, args.name, p, backend, settings, principles, rows=args.rows,
                                              limit=args.limit, scored_by=cli_name(args), progress=progress)
            else:
                summary = personas.judge_pairs(db, args.name, p, backend, settings, rows=args.rows,
                                               limit=args.limit, again=args.again, progress=progress)
            out.append(summary)
            if not args.json:
                print(summary.describe())
    except (personas.PersonaError, labels.LabelError, revise.RevisionError) as err:
        return fail(err)
    except KeyboardInterrupt:
        print("interrupted: the labels and ratings written so far are kept; run the same command again to go on",
              file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps([s.as_dict() for s in out]))
    return 0
