"""``app.py users``: who may sign in to the app, and their roles (the accounts are ``access.py``'s)."""

from __future__ import annotations

import argparse
import json
import sys

from . import access, control
from .text import fail


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``users`` command's parser; it runs as ``run(db, args)``."""
    s = sub.add_parser("users", parents=[common], help="who may sign in to the app, and their roles")
    s.add_argument("action", choices=["add", "list", "remove"])
    s.add_argument("user", nargs="?", metavar="NAME")
    s.add_argument("--role", choices=list(access.ROLES), default="annotator",
                   help="what the user may do (default annotator)")
    s.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    s.add_argument("--no-password", action="store_true",
                   help="no password sign-in (sets the role of a Hugging Face user on a Space)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=users_command)


def users_command(db, args) -> int:
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
        return fail(f"users {args.action} needs a NAME")
    if args.action == "remove":
        if not access.remove_user(db, args.user):
            return fail(f"no user {args.user!r}")
        print(f"removed {args.user}")
        return 0
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty() and not args.no_password:
        import getpass

        password = getpass.getpass(f"password for {args.user}: ")
    elif not args.no_password:
        return fail("give the password on standard input with --password-stdin (or --no-password for a "
                    "Hugging Face user whose role this sets)")
    try:
        result = access.add_user(db, args.user, args.role, password)
    except ValueError as err:
        return fail(err)
    if args.json:
        print(json.dumps(result))
    else:
        served = control.served_mode()
        print(f"{'added' if result['created'] else 'updated'} {args.user} ({args.role})"
              + ("" if served is None or access.sign_in_mode(db) != "password" or served == "password"
                 else "; restart the app to turn sign-in on"))
    return 0
