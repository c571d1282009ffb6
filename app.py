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
import os
import sys

from components import control, policies
from components.store import DEFAULT_DB, DatabaseError, DatabaseInUse, interrupted
from components.text import fail
from components import catalogue


ON_SPACE = bool(os.environ.get("SPACE_ID"))  # set by Hugging Face Spaces
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage pings from a data tool

COMMAND_MODULES = ("components.ingest.cli", "components.labels.cli", "components.revise.cli",
                   "components.personas.cli", "components.search.cli", "components.semantic.cli",
                   "components.insights.cli", "components.users", "components.scores.cli", "components.jobs.cli")
"""Where the commands beside ``serve`` live, each with its concept: ``add_commands(sub, common)``
registers their parsers, each runs as ``run(db, args)``."""


def default_db() -> str:
    """$STUDIO_DB, else the Space's persistent /data when there is one, else data/studio.duckdb."""
    if os.environ.get("STUDIO_DB"):
        return os.environ["STUDIO_DB"]
    if ON_SPACE and os.path.isdir("/data") and os.access("/data", os.W_OK):
        return "/data/studio.duckdb"
    return str(DEFAULT_DB)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_command(db, args) -> int:
    from components import access, ingest, search, ui

    mode = access.sign_in_mode(db)
    if mode == "open" and args.host not in LOOPBACK and not args.open_to_network:
        return fail(f"no users, so there is no sign-in: on {args.host} anyone who can reach the port could read, "
                    "load, label, delete and export everything and read server files through ingest. Add users "
                    "first (python app.py users add NAME --role admin --password-stdin), or pass "
                    "--open-to-network to serve it that way on purpose")
    control.serving(db, mode)
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
    if not catalogue.datasets(db) and not args.no_demo:
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


def parser() -> argparse.ArgumentParser:
    import importlib

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
    s.set_defaults(run=serve_command)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub, common)
    return p


def run(args) -> int:
    """Run parsed ``args``: checked against the command's policy action for the machine's owner, who
    the command acts as (``args.who``), on the database it names."""
    args.who = policies.command(args.command)
    return args.run(control.open_db(args.db), args)


def run_forwarded(argv: list[str], cwd: str) -> int:
    """Run a CLI command sent by ``app.py`` beside this server (components/control.py) on its database."""
    return run(control.forwarded_args(parser().parse_args(argv), cwd))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    os.umask(0o077)  # the database, its WAL, indexes and exports: readable by their owner only
    args = parser().parse_args(argv)
    try:
        return run(args)
    except DatabaseInUse as err:
        in_use = err
    except DatabaseError as err:
        return fail(err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # piped into head, say: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        if interrupted(err):  # DuckDB's "Query interrupted" outside the Database's own methods
            return 130
        raise
    return _forward(args, argv, in_use)


def _forward(args, argv: list[str], in_use: DatabaseInUse) -> int:
    """The command run by the server that holds the database, or why it cannot be."""
    if args.command not in control.FORWARDED:
        return fail(in_use)
    try:
        stdin = sys.stdin.read() if "--password-stdin" in argv else ""
        rc = control.forward(args.db, argv, stdin)
    except control.ControlError as err:
        return fail(err)
    except KeyboardInterrupt:
        return 130
    return fail(in_use) if rc is None else rc


if __name__ == "__main__":
    sys.exit(main())
