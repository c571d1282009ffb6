"""``app.py revise NAME`` and ``app.py models``: critique and rewrite final assistant turns (one resumable
job per persona); the list of models the page may run."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..policies import cli_name
from ..text import fail


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The revise commands' parsers; each runs as ``run(db, args)``."""
    s = sub.add_parser("revise", parents=[common],
                       help="critique and rewrite the final assistant turn of conversations against principles")
    s.add_argument("name", help="dataset name")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--rows", help="rows to revise, e.g. 0,1,2 or 0-99 (default: from the first row)")
    which.add_argument("--query", metavar="Q", help="revise the rows matching this search")
    s.add_argument("--principles", metavar="ID,...",
                   help="principle ids (default: the library's defaults); fill a template with "
                        "ID:slot=value, e.g. pink-elephant:avoid=politics:steer=gardening")
    s.add_argument("--model", required=True, metavar="PATH_OR_ID",
                   help="a local folder or Hub id (local transformers), or the model name an --endpoint serves")
    s.add_argument("--endpoint", metavar="URL", help="an OpenAI-compatible server, e.g. http://localhost:8000/v1 "
                   "(its API key, if it needs one, from $STUDIO_ENDPOINT_API_KEY)")
    s.add_argument("--limit", type=int, metavar="N", help="revise at most N rows")
    s.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="per critique and per revision")
    s.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default 0.7)")
    s.add_argument("--top-p", type=float, default=0.95)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, metavar="N", help="conversations per forward pass (default 32 on a GPU, 4 on CPU)")
    s.add_argument("--side", choices=["chosen", "rejected"], default="chosen", help="which side of a pair to revise")
    s.add_argument("--persona", action="append", metavar="P",
                   help="revise for this persona (repeatable: one pair per row and persona); its system message "
                        "conditions the critique and revision and opens the accepted pair's prompt")
    s.add_argument("--accept", action="store_true", help="store results straight into --into as pairs")
    s.add_argument("--into", metavar="NAME2", help="dataset for accepted pairs (default NAME-revisions)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(run=revise_command)

    s = sub.add_parser("models", parents=[common],
                       help="the models the web app may run: list, add ENTRY, remove ID, history")
    s.add_argument("action", choices=["list", "add", "remove", "history"])
    s.add_argument("entry", nargs="?", metavar="ENTRY",
                   help="local:PATH_OR_HUB_ID or endpoint:URL|MODEL (add); an id from the list (remove)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=models_command)


def revise_command(db, args) -> int:
    from .. import personas, revise

    started = time.perf_counter()
    summaries = []
    try:
        settings = revise.Settings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                   top_p=args.top_p, seed=args.seed, batch_size=args.batch_size).checked()
        principles = revise.resolve_principles(db, args.principles)
        chosen = [personas.resolve(db, n).provenance() for n in dict.fromkeys(args.persona or [])] or [None]
        backend = revise.make_backend(args.model, args.endpoint)
        for n, persona in enumerate(chosen):  # one job per persona: each row gives one pair per persona
            job, resumed, notes = revise.start_batch(db, args.name, principles, backend, settings, rows=args.rows,
                                                     query=args.query, limit=args.limit, side=args.side,
                                                     accept=args.accept, into=args.into, persona=persona)
            for note in notes if n == 0 else []:
                print(note, file=sys.stderr)
            rows = job["rows"]
            print(f"{'resuming' if resumed else 'started'} job {job['id']}: {args.name}, {len(rows)} rows, "
                  f"{', '.join(p.id for p in principles)}" + (f", for persona {persona['name']}" if persona else "")
                  + f" · {backend.describe()}", file=sys.stderr, flush=True)
            width = len(str(len(rows)))

            def progress(p):
                print(f"[{p.done:>{width}}/{p.total}] {p.message}", file=sys.stderr, flush=True)

            job = revise.run_job(db, job["id"], backend, progress=progress)
            summaries.append(_revise_summary(db, args, job, persona, started))
            started = time.perf_counter()
    except (revise.RevisionError, personas.PersonaError) as err:
        return fail(err)
    except KeyboardInterrupt:
        print(f"interrupted: run the same command again to resume job {job['id']}" if "job" in locals()
              else "interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summaries[0] if not args.persona else {"dataset": args.name, "jobs": summaries}, default=str))
        return 0
    for summary in summaries:
        results = summary["results"]
        accepted = sum(1 for r in results if r["status"] == "accepted")
        print(f"job {summary['job']}: {summary['done']} of {summary['total']} rows of {args.name} revised"
              + (f" for {summary['persona']}" if summary["persona"] else "") + " · "
              + (f"{accepted} accepted into {summary['accepted_into']}" if summary["accepted_into"]
                 else f"{summary['pending']} pending review")
              + f" · {summary['failed']} failed · {summary['seconds']:.1f} s")
        for r in results:
            where = f"-> {r['into_dataset']} row {r['into_row']}" if r["into_dataset"] else r["status"]
            what = r["error"] or ("violates " + ", ".join(r["violations"]) if r["violations"] else
                                  "no violation named" if r["critique_parsed"] else "critique not in the format")
            print(f"  row {r['row']}: {where} · {what}")
    return 0


def models_command(db, args) -> int:
    from .. import revise

    try:
        if args.action == "add":
            if not args.entry:
                return fail("models add needs an entry: local:PATH_OR_HUB_ID or endpoint:URL|MODEL")
            entry, new = revise.add_model(db, *revise.parse_spec(args.entry), author=cli_name(args), origin="cli")
            print(json.dumps(entry.as_dict() | {"added": new}) if args.json
                  else f"{'added' if new else 'already listed'}: {entry.id}  {entry.spec()}")
        elif args.action == "remove":
            if not args.entry:
                return fail("models remove needs an entry's id (or its spec)")
            entry = revise.remove_model(db, args.entry, author=cli_name(args))
            print(json.dumps(entry.as_dict()) if args.json else f"removed {entry.id}  {entry.spec()}")
        elif args.action == "history":
            rows = revise.model_history(db)
            if args.json:
                print(json.dumps(rows, default=str))
            for r in [] if args.json else rows:
                print(f"{str(r['at'])[:19]}  {r['action']:<6}  {r['id']}  by {r['author'] or '?'}")
        else:
            listed = revise.models(db)
            if args.json:
                print(json.dumps([m.as_dict() for m in listed]))
            elif not listed:
                print("no models listed: annotators cannot revise until an admin adds one")
            for m in [] if args.json else listed:
                print(f"{m.id}  {m.spec()}  ({m.origin}{', by ' + m.updated_by if m.updated_by else ''})")
    except revise.RevisionError as err:
        return fail(err)
    return 0


def _revise_summary(db, args, job: dict, persona: dict | None, started: float) -> dict:
    from .. import revise

    results = revise.revisions(db, job_id=job["id"], limit=len(job["rows"]) + 10)
    return {
        "job": job["id"], "dataset": args.name, "status": job["status"], "total": job["total"],
        "done": job["done"], "pending": job["pending"], "failed": job["failed"],
        "accepted_into": job["accept_into"], "seconds": round(time.perf_counter() - started, 2),
        "persona": persona["name"] if persona else None, "persona_version": persona["version"] if persona else None,
        "results": [{k: r[k] for k in ("id", "row", "side", "status", "violations", "critique_parsed", "revision",
                                        "error", "into_dataset", "into_row", "tokens", "latency_s")} for r in results],
    }
