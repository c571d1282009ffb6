"""Preference Studio: search, compare, label and revise preference data.

    python app.py                      serve on http://localhost:7860 (demo data on first start)
    python app.py ingest SOURCE        load a file, folder or Hub dataset
    python app.py datasets             list what is loaded
    python app.py index NAME           build the search index of a dataset
    python app.py search NAME QUERY    BM25 search (--lucene for Lucene syntax; --topics for a TREC run)
    python app.py embed NAME --model M vectors for semantic and hybrid search (search --mode semantic|hybrid)
    python app.py similar NAME ROW     the rows most like a row (by embedding, else Lucene's MoreLikeThis)
    python app.py stats NAME           statistics of a dataset of pairs (length bias, duplicates, ...)
    python app.py contamination TRAIN --against EVAL    evaluation prompts found in training data
    python app.py export NAME --out F  write labeled pairs in TRL preference format
    python app.py settings NAME        a labeling project's overlap, guidelines, blind mode and gold pairs
    python app.py revise NAME ...      critique and rewrite final assistant turns against principles
    python app.py personas             the persona library;  judge NAME --persona P: a model labels as P
    python app.py models               the models the page offers for revision
    python app.py users                who may sign in, and their roles
    python app.py score NAME --model M  a reward model scores both sides of every pair (--ray to use a cluster)
    python app.py jobs                 model jobs: running and finished, cancel

While the app serves a database, these commands on the same database are carried out by the app.
Run ``python app.py COMMAND --help`` for each command's options.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import time
from pathlib import Path

from components.store import DEFAULT_DB, Database, DatabaseError, DatabaseInUse, interrupted


ON_SPACE = bool(os.environ.get("SPACE_ID"))  # set by Hugging Face Spaces
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage pings from a data tool


def default_db() -> str:
    """$STUDIO_DB, else the Space's persistent /data when there is one, else data/studio.duckdb."""
    if os.environ.get("STUDIO_DB"):
        return os.environ["STUDIO_DB"]
    if ON_SPACE and os.path.isdir("/data") and os.access("/data", os.W_OK):
        return "/data/studio.duckdb"
    return str(DEFAULT_DB)


_SERVED: Database | None = None
"""The database of the app this process serves: forwarded CLI commands run on it."""
_SERVED_MODE: str | None = None
"""How the served app signs people in (components/access.py), fixed when it started."""

PATH_OPTIONS = ("out", "topics", "output", "guidelines", "file")
"""Options that name files: a forwarded command resolves them against the CLI's working folder."""


def _open(args) -> Database:
    if _SERVED is not None and Path(args.db).resolve() == _SERVED.path.resolve():
        return _SERVED
    return Database(args.db)


def run_forwarded(argv: list[str], cwd: str) -> int:
    """Run a CLI command sent by ``app.py`` beside this server (components/control.py) on its database."""
    args = parser().parse_args(argv)
    for key in PATH_OPTIONS:
        value = getattr(args, key, None)
        if isinstance(value, str) and value and not os.path.isabs(value):
            setattr(args, key, os.path.join(cwd, value))
    source = getattr(args, "source", None)
    if args.command == "ingest" and source and not os.path.isabs(source) and os.path.exists(os.path.join(cwd, source)):
        args.source = os.path.join(cwd, source)
    args.db = str(_SERVED.path) if _SERVED is not None else args.db
    return args.fn(args)


# -- commands ------------------------------------------------------------------------------------


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args) -> int:
    global _SERVED, _SERVED_MODE
    from components import access, control, ingest, search, ui

    db = _open(args)
    mode = access.sign_in_mode(db)
    if mode == "open" and args.host not in LOOPBACK and not args.open_to_network:
        return _fail(f"no users, so there is no sign-in: on {args.host} anyone who can reach the port could read, "
                     "load, label, delete and export everything and read server files through ingest. Add users "
                     "first (python app.py users add NAME --role admin --password-stdin), or pass "
                     "--open-to-network to serve it that way on purpose")
    _SERVED, _SERVED_MODE = db, mode
    if os.environ.get("STUDIO_MIRROR_REPO"):
        from components import mirror

        try:  # restores an empty database, then pushes new work every few minutes and at shutdown
            mirror.start(db, os.environ["STUDIO_MIRROR_REPO"], db.path.parent / "mirror",
                         token=os.environ.get("HF_TOKEN"), every=float(os.environ.get("STUDIO_MIRROR_MINUTES", 5)))
        except mirror.MirrorError as err:
            print(f"warning: {err}; labels are kept only in {db.path} until the mirror works", file=sys.stderr)
    # the CLI beside this server sends its commands here instead of opening the file
    try:
        atexit.register(control.ControlServer(db.path, run_forwarded).start().close)
    except control.ControlError as err:
        print(f"warning: {err}; the CLI cannot send its commands to this server", file=sys.stderr)
    if not db.datasets() and not args.no_demo:
        loaded = ingest.load_demo(db)
        for s in loaded:
            print(s.describe(), file=sys.stderr)
        # the demo datasets are searchable once their indexes are built, in the background, so
        # that the page is served without waiting for Java to start
        search.index_in_background(db, [s.name for s in loaded])  # progress shows in the Search tab
    demo = ui.build_app(db, mode=mode, data_dir=args.data_dir)
    demo.queue(default_concurrency_limit=16)
    print(f"sign-in: {ui.MODE_NOTES[mode]}", file=sys.stderr)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, **ui.launch_kwargs(db, mode, args.max_upload_mb))
    return 0


def cmd_ingest(args) -> int:
    from components.ingest import IngestError, ingest

    db = _open(args)

    def progress(frac, desc):
        if not args.json and sys.stderr.isatty():
            print(f"[{frac:4.0%}] {desc}", file=sys.stderr)

    try:
        summary = ingest(db, args.source, name=args.name, split=args.split, config=args.config,
                         mapping=args.map, max_chars=args.max_chars, progress=progress)
    except IngestError as err:
        return _fail(err)
    print(json.dumps(summary.as_dict()) if args.json else summary.describe())
    return 0


def cmd_datasets(args) -> int:
    db = _open(args)
    infos = db.datasets()
    if args.json:
        from components.ingest import empty_side_counts

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


def cmd_export(args) -> int:
    from components import labels

    if args.labels_log and (args.annotator or args.majority):
        return _fail("--labels-log writes every event of every annotator: leave out --annotator and --majority")
    annotator = None if args.majority else args.annotator  # no --annotator: the majority as well
    by_persona = args.persona is not None or args.all_personas
    if (args.with_scores or args.score_model or args.min_margin is not None) and (args.labels_log or args.persona
                                                                               or args.all_personas):
        return _fail("--with-scores, --score-model and --min-margin go with an export of pairs: leave out "
                     "--labels-log, --persona and --all-personas")
    if by_persona and (args.labels_log or args.labeled_only or args.keep_ties):
        return _fail("--persona and --all-personas write each persona's labeled or revised pairs: leave out "
                     "--labels-log, --labeled-only and --keep-ties")
    db = _open(args)
    try:
        if args.labels_log:
            summary = labels.export_log(db, args.name, args.out)
        elif by_persona:
            from components import personas

            try:
                summary = personas.export_persona_pairs(db, args.name, args.out, args.persona, style=args.format)
            except personas.PersonaError as err:
                return _fail(err)
        else:
            summary = labels.export_pairs(db, args.name, args.out, style=args.format, annotator=annotator,
                                          labeled_only=args.labeled_only, keep_ties=args.keep_ties,
                                          with_scores=args.with_scores, score_model=args.score_model,
                                          min_margin=args.min_margin)
        result = summary.as_dict()
        if args.push_to_hub:
            result["hub_url"] = labels.push_to_hub(args.out, args.push_to_hub)
    except labels.LabelError as err:
        return _fail(err)
    print(json.dumps(result) if args.json else summary.describe()
          + (f"\npushed to {result['hub_url']}" if result.get("hub_url") else ""))
    return 0


def cmd_revise(args) -> int:
    from components import personas, revise

    db = _open(args)
    if args.into and not args.accept:
        return _fail("--into names the dataset accepted pairs go to: add --accept (without it, results wait "
                     "for review in the Revise tab)")
    started = time.perf_counter()
    summaries = []
    try:
        settings = revise.Settings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                   top_p=args.top_p, seed=args.seed, batch_size=args.batch_size).checked()
        notes: list[str] = []
        into = revise.target_name(args.into, args.name) if args.accept else None
        rows = revise.select_rows(db, args.name, args.rows, args.query, args.limit, notes)
        for note in notes:
            print(note, file=sys.stderr)
        principles = revise.resolve_principles(db, args.principles)
        chosen = [personas.resolve(db, n).provenance() for n in dict.fromkeys(args.persona or [])] or [None]
        backend = revise.make_backend(args.model, args.endpoint)
        selection = {"rows": args.rows, "query": args.query, "limit": args.limit}
        for persona in chosen:  # one job per persona: each row gives one pair per persona
            job, resumed = revise.start_job(db, args.name, rows, principles, backend, settings, args.side, into,
                                            selection, persona=persona)
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
        return _fail(err)
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


def _revise_summary(db, args, job: dict, persona: dict | None, started: float) -> dict:
    from components import revise

    results = revise.revisions(db, job_id=job["id"], limit=len(job["rows"]) + 10)
    return {
        "job": job["id"], "dataset": args.name, "status": job["status"], "total": job["total"],
        "done": job["done"], "pending": job["pending"], "failed": job["failed"],
        "accepted_into": job["accept_into"], "seconds": round(time.perf_counter() - started, 2),
        "persona": persona["name"] if persona else None, "persona_version": persona["version"] if persona else None,
        "results": [{k: r[k] for k in ("id", "row", "side", "status", "violations", "critique_parsed", "revision",
                                        "error", "into_dataset", "into_row", "tokens", "latency_s")} for r in results],
    }


def cmd_personas(args) -> int:
    from components import personas

    db = _open(args)
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
            return _fail(f"personas {args.action} needs a {'NAME' if args.action == 'show' else 'FILE'}")
        if args.action == "show":
            p = personas.resolve(db, args.target)
            if args.json:
                print(json.dumps(p.as_dict() | {"history": personas.persona_history(db, p.name)}, default=str))
            else:
                print(f"{p.name} (version {p.version})\n{p.profile()}\n\nsystem message:\n{p.system_message}")
            return 0
        if args.action == "add":
            counts = personas.import_personas(db, args.target, author="cli")
            print(json.dumps(counts) if args.json else
                  ", ".join(f"{n} {what}" for what, n in counts.items()) + f" from {args.target}")
            return 0
        n = personas.write_personas(personas.personas(db), args.target)
        print(json.dumps({"written": n, "out": args.target}) if args.json else f"wrote {n} personas to {args.target}")
        return 0
    except personas.PersonaError as err:
        return _fail(err)


def cmd_judge(args) -> int:
    from components import labels, personas, revise

    db = _open(args)
    out = []
    try:
        settings = revise.Settings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                   seed=args.seed, batch_size=args.batch_size).checked()
        chosen = [personas.resolve(db, n) for n in dict.fromkeys(args.persona)]
        labels.check_pairs(db, args.name)
        backend = revise.make_backend(args.model, args.endpoint)
        for p in chosen:
            def progress(done, total, name=p.name):
                print(f"[{done}/{total}] judged as {name}", file=sys.stderr, flush=True)

            summary = personas.judge_pairs(db, args.name, p, backend, settings, rows=args.rows, limit=args.limit,
                                           again=args.again, progress=progress)
            out.append(summary)
            if not args.json:
                print(summary.describe())
    except (personas.PersonaError, labels.LabelError, revise.RevisionError) as err:
        return _fail(err)
    except KeyboardInterrupt:
        print("interrupted: the labels written so far are kept; run the same command again to go on",
              file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps([s.as_dict() for s in out]))
    return 0


def cmd_models(args) -> int:
    from components import revise

    db = _open(args)
    try:
        if args.action == "add":
            if not args.entry:
                return _fail("models add needs an entry: local:PATH_OR_HUB_ID or endpoint:URL|MODEL")
            entry, new = revise.add_model(db, *revise.parse_spec(args.entry), author="cli", origin="cli")
            print(json.dumps(entry.as_dict() | {"added": new}) if args.json
                  else f"{'added' if new else 'already listed'}: {entry.id}  {entry.spec()}")
        elif args.action == "remove":
            if not args.entry:
                return _fail("models remove needs an entry's id (or its spec)")
            entry = revise.remove_model(db, args.entry, author="cli")
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
        return _fail(err)
    return 0


def cmd_index(args) -> int:
    from components import search

    db = _open(args)
    names = [d.name for d in db.datasets()] if args.all else args.names
    if not names:
        return _fail("name a dataset to index, or pass --all")

    def progress(frac, desc):
        if not args.json and sys.stderr.isatty():
            print(f"[{frac:4.0%}] {desc}", file=sys.stderr)

    out = []
    try:
        for name in names:
            summary = search.build_index(db, name, k1=args.k1, b=args.b, progress=progress)
            out.append(summary)
            if not args.json:
                print(summary.describe())
    except search.SearchError as err:
        return _fail(err)
    if args.json:
        print(json.dumps([s.as_dict() for s in out]))
    return 0


def cmd_settings(args) -> int:
    from components import labels

    db = _open(args)
    who = "cli"
    try:
        info = labels.check_pairs(db, args.name)
        if args.overlap is not None:
            labels.set_setting(db, info.name, "overlap", args.overlap, who)
        if args.guidelines:
            try:
                text = Path(args.guidelines).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                return _fail(f"cannot read {args.guidelines}: {getattr(err, 'strerror', None) or err}")
            labels.set_setting(db, info.name, "guidelines", text, who)
        if args.blind is not None:
            labels.set_setting(db, info.name, "blind", args.blind, who)
        marked = labels.import_gold(db, info.name, args.file, who) if args.file else 0
        now = labels.project_settings(db, info.name)
        progress = labels.project_progress(db, info.name)
    except labels.LabelError as err:
        return _fail(err)
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


def cmd_users(args) -> int:
    from components import access

    db = _open(args)
    if args.action == "list":
        rows = access.users(db)
        if args.json:
            print(json.dumps([{"name": u["name"], "role": u["role"], "password": u["has_password"]} for u in rows]))
        elif not rows:
            print("no users: the app runs as the local single-user tool (add one to turn sign-in on)")
        else:
            width = max(len(u["name"]) for u in rows)
            for u in rows:
                print(f"{u['name']:<{width}}  {u['role']:<9}  {'password' if u['has_password'] else 'no password'}")
        return 0
    if not args.user:
        return _fail(f"users {args.action} needs a NAME")
    if args.action == "remove":
        if not access.remove_user(db, args.user):
            return _fail(f"no user {args.user!r}")
        print(f"removed {args.user}")
        return 0
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty() and not args.no_password:
        import getpass

        password = getpass.getpass(f"password for {args.user}: ")
    elif not args.no_password:
        return _fail("give the password on standard input with --password-stdin (or --no-password for a "
                     "Hugging Face user whose role this sets)")
    try:
        result = access.add_user(db, args.user, args.role, password)
    except ValueError as err:
        return _fail(err)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'added' if result['created'] else 'updated'} {args.user} ({args.role})"
              + ("" if _SERVED is None or access.sign_in_mode(db) != "password" or _SERVED_MODE == "password"
                 else "; restart the app to turn sign-in on"))
    return 0


def _search_filters(args):
    from components import search

    ranges = {}
    for spec in args.filter or []:
        name, eq, bounds = spec.partition("=")
        low, colon, high = bounds.partition(":")
        if not eq or not colon or not name:
            raise search.SearchError(f"--filter {spec!r}: use NAME=MIN:MAX (either side may be empty), "
                                     "e.g. length=100:2000 or meta:rank=:10")
        ranges[name] = (low or None, high or None)
    return search.Filters(split=args.split, ranges=ranges, label=args.label)


def cmd_stats(args) -> int:
    from components import insights

    db = _open(args)
    try:
        tokenizer = insights.load_tokenizer(args.tokenizer) if args.tokenizer else None
        stats = insights.dataset_stats(db, args.name, unit=args.unit or ("tokens" if tokenizer else "chars"),
                                       tokenizer=tokenizer)
    except insights.StatsError as err:
        return _fail(err)
    if args.json:
        print(json.dumps(stats, default=str))
        return 0
    from components.views.stats import summary_markdown

    print(summary_markdown(stats).replace("**", "").replace("<sub>", "").replace("</sub>", ""))
    return 0


def cmd_contamination(args) -> int:
    from components import insights

    db = _open(args)
    try:
        result = insights.find_contamination(db, args.train, args.against.split(","), n=args.n, fld=args.field,
                                             threshold=args.threshold, limit=None if (args.json or args.out) else 1000)
        if args.out:
            kept = insights.export_clean(db, args.train, [m.row for m in result.matches], args.out)
            print(f"wrote {kept:,} rows to {args.out} ({len(result.matches):,} suspects at score >= "
                  f"{args.threshold} left out)", file=sys.stderr)
    except insights.ContaminationError as err:
        return _fail(err)
    if args.json:
        print(json.dumps([m.as_dict() for m in result.matches]))
    elif not args.out:
        print(insights.describe(result))
    return 0


def cmd_embed(args) -> int:
    from components.semantic.cli import embed_command

    return embed_command(_open(args), args)


def cmd_similar(args) -> int:
    from components.semantic.cli import similar_command

    return similar_command(_open(args), args)


def cmd_search(args) -> int:
    from components import search

    db = _open(args)
    datasets = [n for n in args.name.split(",") if n]
    try:
        filters = _search_filters(args)
        if args.topics:
            if args.mode != "bm25":
                return _fail("--topics runs BM25 only: leave out --mode")
            if args.query is not None:
                return _fail("give either a QUERY or --topics FILE, not both")
            if not args.output:
                return _fail("--topics needs --output RUN (the TREC run file to write)")
            topics = search.read_topics(args.topics)
            results = search.batch_search(db, datasets, topics, k=args.k or 1000, field=args.field,
                                          mode="lucene" if args.lucene else "words", filters=filters)
            lines = search.write_run(results, args.output, tag=args.tag)
            print(f"wrote {lines:,} lines for {len(topics)} topics to {args.output}", file=sys.stderr)
            return 0
        if args.query is None:
            return _fail("give a QUERY to search for (or --topics FILE --output RUN)")
        if args.mode != "bm25":
            from components.semantic.cli import semantic_results

            res = semantic_results(db, args, datasets, filters)
        else:
            res = search.search(db, datasets, args.query, field=args.field, mode="lucene" if args.lucene else "words",
                                k=args.k or 10, offset=args.offset, filters=filters)
    except search.SearchError as err:
        return _fail(err)
    try:
        _print_hits(res, args.json)
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print_hits(res, as_json: bool) -> None:
    several = len(res.datasets) > 1
    if as_json:
        for h in res.hits:
            print(json.dumps({"rank": h.rank, "docid": f"{h.dataset}/{h.row}" if several else str(h.row),
                              "dataset": h.dataset, "row": h.row, "score": round(h.score, 6),
                              "source_id": h.source_id, "part": h.part, "speaker": h.speaker, "turn": h.turn,
                              "score_chosen": h.score_chosen, "score_rejected": h.score_rejected,
                              "margin": h.margin, "labels": h.labels, "snippet": h.plain_snippet(),
                              "snippet_html": h.snippet, "link": h.link}))
        return
    print(f"{res.total:,} hits in {', '.join(res.datasets) or 'no dataset'} ({res.seconds * 1000:.1f} ms)"
          + (f"; showing {res.offset + 1}-{res.offset + len(res.hits)}" if res.hits else ""))
    width = max([len(f"{h.dataset}/{h.row}" if several else str(h.row)) for h in res.hits] or [5])
    for h in res.hits:
        docid = f"{h.dataset}/{h.row}" if several else str(h.row)
        snippet = " ".join(h.plain_snippet().split())
        where = f"{h.part} ({h.speaker}): " if h.part and h.speaker else f"{h.part}: " if h.part else ""
        print(f"{h.rank:>5}  {docid:<{width}}  {h.score:8.4f}  {where}{snippet}")


def cmd_score(args) -> int:
    from components.scores.cli import score_command

    return score_command(_open(args), args)


def cmd_jobs(args) -> int:
    from components.jobs.cli import jobs_command

    return jobs_command(_open(args), args)


def _fail(err: BaseException) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 1


# -- parser --------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    from components.formats import DEFAULT_MAX_CHARS

    p = argparse.ArgumentParser(prog="app.py", description="Preference Studio")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=default_db(),
                        help="DuckDB database file (default data/studio.duckdb, or $STUDIO_DB)")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("serve", parents=[common], help="run the web app")
    s.add_argument("--host", default=os.environ.get("STUDIO_HOST", "0.0.0.0" if ON_SPACE else "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("STUDIO_PORT", os.environ.get("PORT", 7860))))
    s.add_argument("--no-demo", action="store_true", help="do not load the demo data into an empty database")
    s.add_argument("--open-to-network", action="store_true",
                   help="serve on a non-local --host without sign-in: anyone who reaches it may do everything")
    s.add_argument("--data-dir", default=os.environ.get("STUDIO_DATA_DIR"), metavar="DIR",
                   help="with sign-in on, admins may load server files from this folder only (default: none)")
    s.add_argument("--max-upload-mb", type=float, default=float(os.environ.get("STUDIO_MAX_UPLOAD_MB", 512)),
                   help="largest file the Data tab accepts (default 512 MB)")
    s.set_defaults(fn=cmd_serve)

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
    s.set_defaults(fn=cmd_ingest)

    s = sub.add_parser("datasets", parents=[common], help="list datasets")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_datasets)

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
    s.add_argument("--push-to-hub", metavar="REPO", help="also push the file to this Hub dataset repo (needs HF_TOKEN)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(fn=cmd_export)

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
    s.set_defaults(fn=cmd_revise)

    s = sub.add_parser("personas", parents=[common],
                       help="the persona library: list, show NAME, add FILE (JSON lines), export FILE")
    s.add_argument("action", choices=["list", "show", "add", "export"])
    s.add_argument("target", nargs="?", metavar="NAME_OR_FILE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_personas)

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
    s.add_argument("--max-new-tokens", type=int, default=32, metavar="N")
    s.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, metavar="N", help="pairs per forward pass")
    s.add_argument("--json", action="store_true", help="print one JSON list (one summary per persona)")
    s.set_defaults(fn=cmd_judge)

    s = sub.add_parser("models", parents=[common],
                       help="the models the web app may run: list, add ENTRY, remove ID, history")
    s.add_argument("action", choices=["list", "add", "remove", "history"])
    s.add_argument("entry", nargs="?", metavar="ENTRY",
                   help="local:PATH_OR_HUB_ID or endpoint:URL|MODEL (add); an id from the list (remove)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_models)

    s = sub.add_parser("index", parents=[common], help="build the search index (BM25, Lucene) of datasets")
    s.add_argument("names", nargs="*", metavar="NAME", help="dataset name(s)")
    s.add_argument("--all", action="store_true", help="index every dataset")
    s.add_argument("--k1", type=float, default=0.9, help="BM25 k1 of the index (default 0.9)")
    s.add_argument("--b", type=float, default=0.4, help="BM25 b of the index (default 0.4)")
    s.add_argument("--json", action="store_true", help="print one JSON list")
    s.set_defaults(fn=cmd_index)

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
    s.set_defaults(fn=cmd_settings)

    s = sub.add_parser("users", parents=[common], help="who may sign in to the app, and their roles")
    s.add_argument("action", choices=["add", "list", "remove"])
    s.add_argument("user", nargs="?", metavar="NAME")
    s.add_argument("--role", choices=["viewer", "annotator", "reviewer", "admin"], default="annotator",
                   help="what the user may do (default annotator)")
    s.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    s.add_argument("--no-password", action="store_true",
                   help="no password sign-in (sets the role of a Hugging Face user on a Space)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_users)

    s = sub.add_parser("search", parents=[common], help="search datasets (BM25); batch mode writes a TREC run")
    s.add_argument("name", help="dataset name, or several joined by commas")
    s.add_argument("query", nargs="?", help="what to search for")
    s.add_argument("--field", choices=["contents", "prompt", "chosen", "rejected", "final"], default="contents",
                   help="field to search (default contents: everything)")
    s.add_argument("--lucene", action="store_true",
                   help='Lucene query syntax: "phrases", AND OR -, field:, wildcards*, ^boosts')
    s.add_argument("--k", type=int, help="hits to return (default 10; 1000 with --topics)")
    s.add_argument("--offset", type=int, default=0, help="skip this many hits (paging)")
    s.add_argument("--split", help="only datasets of this split")
    s.add_argument("--filter", action="append", metavar="NAME=MIN:MAX",
                   help="range filter on length, length_prompt, length_chosen, length_rejected, score_chosen, "
                        "score_rejected, margin or meta:COLUMN; repeatable")
    s.add_argument("--label", choices=["any", "unlabeled", "labeled", "flipped", "empty_side"], default="any",
                   help="label status filter, or empty_side: the pairs with an empty response")
    s.add_argument("--topics", metavar="FILE", help="batch mode: one 'qid<TAB>query' per line")
    s.add_argument("--output", metavar="RUN", help="batch mode: the TREC run file to write")
    s.add_argument("--tag", default="studio-bm25", help="run tag in the TREC run (batch mode)")
    s.add_argument("--json", action="store_true", help="print one JSON object per hit")
    s.add_argument("--mode", choices=["bm25", "semantic", "hybrid"], default="bm25",
                   help="bm25 (default), semantic (nearest by embedding) or hybrid (reciprocal rank fusion of both)")
    s.add_argument("--model", help="semantic and hybrid: the embedding model (default: the dataset's newest vectors)")
    s.set_defaults(fn=cmd_search)

    from components.semantic.cli import add_embed_arguments, add_similar_arguments

    s = sub.add_parser("embed", parents=[common], help="embed a dataset's rows for semantic search (a job; --ray)")
    add_embed_arguments(s)
    s.set_defaults(fn=cmd_embed)
    s = sub.add_parser("similar", parents=[common], help="the rows most like a row, with their similarity")
    add_similar_arguments(s)
    s.set_defaults(fn=cmd_similar)

    s = sub.add_parser("stats", parents=[common], help="statistics of a dataset of pairs (lengths, length bias, "
                                                         "ratings, duplicates, metadata, labels)")
    s.add_argument("name", help="dataset name")
    s.add_argument("--unit", choices=["chars", "words", "tokens"], help="unit of the length histograms")
    s.add_argument("--tokenizer", metavar="PATH", help="a local tokenizer folder or tokenizer.json: token lengths")
    s.add_argument("--json", action="store_true", help="print every statistic as one JSON object")
    s.set_defaults(fn=cmd_stats)

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
    s.set_defaults(fn=cmd_contamination)
    from components.jobs.cli import add_jobs_arguments
    from components.scores.cli import add_arguments as add_score_arguments

    s = sub.add_parser("score", parents=[common], help="a reward model scores both sides of every pair (admin)")
    add_score_arguments(s)
    s.set_defaults(fn=cmd_score)
    s = sub.add_parser("jobs", parents=[common], help="model jobs (score, ...): list, show ID, cancel ID")
    add_jobs_arguments(s)
    s.set_defaults(fn=cmd_jobs)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    os.umask(0o077)  # the database, its WAL, indexes and exports: readable by their owner only
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except DatabaseInUse as err:
        in_use = err
    except DatabaseError as err:
        return _fail(err)
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        if interrupted(err):  # DuckDB's "Query interrupted" outside the Database's own methods
            return 130
        raise
    return _forward(args, argv, in_use)


def _forward(args, argv: list[str], in_use: DatabaseInUse) -> int:
    """The command run by the server that holds the database, or why it cannot be."""
    from components import control

    if args.command not in control.FORWARDED:
        return _fail(in_use)
    try:
        stdin = sys.stdin.read() if "--password-stdin" in argv else ""
        rc = control.forward(args.db, argv, stdin)
    except control.ControlError as err:
        return _fail(err)
    except KeyboardInterrupt:
        return 130
    return _fail(in_use) if rc is None else rc


if __name__ == "__main__":
    sys.exit(main())
