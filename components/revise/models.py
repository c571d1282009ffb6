"""Which models people may run from the page: the model list, and who may choose what.

An entry is a local model (a folder or a Hugging Face model id, loaded by transformers in this
process) or the model an OpenAI-compatible endpoint serves. Written as text, an entry is
``local:PATH_OR_HUB_ID`` or ``endpoint:URL|MODEL`` -- the form of ``$STUDIO_MODELS`` (comma-separated),
which seeds the list once, with ``$STUDIO_REVISE_MODEL``. Admins add and remove entries (the page, or
``python app.py models``); every change is kept in ``model_history`` with who made it and when.

The rule (``choose``): anyone allowed to revise runs a listed entry, named by its id; running a model
that is not in the list -- a Hub id the server would download, a URL it would call -- needs the admin
role. In the local single-user tool the one person at the keyboard is an admin, so free text stays
allowed there. The CLI is the machine's owner and never asks this module.

>>> parse_spec("endpoint:http://localhost:8000/v1|qwen")
('endpoint', 'qwen', 'http://localhost:8000/v1')
>>> entry_id("local", "Qwen/Qwen2.5-0.5B-Instruct", None)
'Qwen2.5-0.5B-Instruct-0ac594'
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from .. import access
from ..names import slug
from ..store import Database
from ..text import utc_now
from .backends import Backend, make_backend
from .errors import RevisionError

MODELS_VARIABLE = "STUDIO_MODELS"
DEFAULT_VARIABLE = "STUDIO_REVISE_MODEL"
KINDS = ("local", "endpoint")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass(frozen=True)
class ModelEntry:
    id: str
    kind: str  # local | endpoint
    model: str
    endpoint: str | None
    origin: str  # settings | page | cli
    updated_by: str | None = None

    def spec(self) -> str:
        return f"local:{self.model}" if self.kind == "local" else f"endpoint:{self.endpoint}|{self.model}"

    def label(self) -> str:
        """What the page's list shows.

        >>> ModelEntry("m-1", "endpoint", "qwen", "http://gpu:8000/v1", "page").label()
        'qwen · endpoint gpu:8000'
        """
        if self.kind == "endpoint":
            host = re.sub(r"^https?://", "", self.endpoint or "").split("/")[0]
            return f"{self.model} · endpoint {host}"
        return f"{self.model} · local"

    def backend(self, device: str | None = None) -> Backend:
        return make_backend(self.model, self.endpoint, device)

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "model": self.model, "endpoint": self.endpoint,
                "origin": self.origin, "updated_by": self.updated_by, "spec": self.spec()}


# -- entries as text ----------------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """``local:PATH_OR_HUB_ID`` or ``endpoint:URL|MODEL`` (a bare id or folder is local) as
    (kind, model, endpoint); RevisionError in one line for anything else.

    >>> parse_spec("Qwen/Qwen2.5-0.5B-Instruct")
    ('local', 'Qwen/Qwen2.5-0.5B-Instruct', None)
    >>> parse_spec("http://h:8000/v1")
    Traceback (most recent call last):
    ...
    components.revise.errors.RevisionError: an endpoint is written endpoint:URL|MODEL, got 'http://h:8000/v1'
    """
    spec = (spec or "").strip()
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        spec = rest.strip()
    else:
        kind = "local"
    if kind == "endpoint":
        url, sep, model = spec.rpartition("|")
        if not sep:
            raise RevisionError(f"an endpoint is written endpoint:URL|MODEL, got {spec!r}")
        return check_entry("endpoint", model, url)
    if re.match(r"https?://", spec):
        raise RevisionError(f"an endpoint is written endpoint:URL|MODEL, got {spec!r}")
    return check_entry("local", spec, None)


def check_entry(kind: str, model: str | None, endpoint: str | None = None) -> tuple[str, str, str | None]:
    """(kind, model, endpoint) cleaned, if they can name a model; else RevisionError saying why.
    Only the form is checked here: whether the model loads is found when it is first run."""
    model = (model or "").strip()
    if kind not in KINDS:
        raise RevisionError(f"a model entry is local or endpoint, not {kind!r}")
    if not model:
        raise RevisionError("give a model: a folder or Hub id, or the name the endpoint serves")
    if any(c in model for c in ",|\n\r"):
        raise RevisionError(f"a model name cannot hold ',', '|' or a line break: {model!r}")
    if kind == "endpoint":
        url = (endpoint or "").strip().rstrip("/")
        if not re.fullmatch(r"https?://[^\s,|]+", url):
            raise RevisionError(f"endpoint URL must start with http:// or https:// (no spaces), got {url!r}")
        return "endpoint", model, url
    if model.startswith((".", "/", "~")):
        folder = Path(model).expanduser()
        if not (folder / "config.json").is_file():
            raise RevisionError(f"{model} is not a transformers model folder (no config.json there)")
        return "local", str(folder), None
    if not HUB_ID.fullmatch(model):
        raise RevisionError(f"{model!r} is neither a model folder (./, / or ~) nor a Hugging Face id (org/name)")
    return "local", model, None


def entry_id(kind: str, model: str, endpoint: str | None) -> str:
    """A short, readable id that stays the same for the same entry."""
    digest = hashlib.sha256("\n".join((kind, model, endpoint or "")).encode()).hexdigest()[:6]
    name = re.split(r"[/\\]", model.rstrip("/\\"))[-1]
    return f"{slug(name, 'model')[:40]}-{digest}"


# -- the list -----------------------------------------------------------------------------------------

_COLUMNS = "id, kind, model, endpoint, origin, updated_by"


def _entry(r: dict) -> ModelEntry:
    return ModelEntry(r["id"], r["kind"], r["model"], r["endpoint"], r["origin"], r["updated_by"])


def models(db: Database) -> list[ModelEntry]:
    """The listed entries, in the order they were added."""
    ensure_models(db)
    return [_entry(r) for r in db.dicts(f"SELECT {_COLUMNS} FROM models WHERE NOT removed ORDER BY updated_at, id")]


def get_model(db: Database, entry: str | None) -> ModelEntry | None:
    """The listed entry with this id (or written as this spec), else None."""
    ensure_models(db)
    entry = (entry or "").strip()
    if not entry:
        return None
    rows = db.dicts(f"SELECT {_COLUMNS} FROM models WHERE id = ? AND NOT removed", [entry])
    if not rows:
        try:
            written = entry_id(*parse_spec(entry))
            rows = db.dicts(f"SELECT {_COLUMNS} FROM models WHERE id = ? AND NOT removed", [written])
        except RevisionError:
            return None
    return _entry(rows[0]) if rows else None


def default_model(db: Database, env: dict | None = None) -> ModelEntry | None:
    """The entry picked when the page opens: ``$STUDIO_REVISE_MODEL``'s when listed, else the first."""
    env = os.environ if env is None else env
    listed = models(db)
    default = get_model(db, env.get(DEFAULT_VARIABLE) or "")
    return default or (listed[0] if listed else None)


def find_model(db: Database, kind: str, model: str, endpoint: str | None) -> ModelEntry | None:
    """The listed entry for exactly this model (and endpoint), else None."""
    try:
        return get_model(db, entry_id(*check_entry(kind, model, endpoint if kind == "endpoint" else None)))
    except RevisionError:
        return None


def add_model(db: Database, kind: str, model: str, endpoint: str | None = None, author: str | None = None,
              origin: str = "page") -> tuple[ModelEntry, bool]:
    """List a model (again, when it was removed); (the entry, whether it was new to the list)."""
    kind, model, endpoint = check_entry(kind, model, endpoint)
    mid = entry_id(kind, model, endpoint)
    now = utc_now()

    def run(cur):
        old = cur.execute("SELECT removed FROM models WHERE id = ?", [mid]).fetchone()
        if old is not None and not old[0]:
            return False
        cur.execute("DELETE FROM models WHERE id = ?", [mid])
        cur.execute("INSERT INTO models VALUES (?, ?, ?, ?, ?, false, ?, ?)",
                    [mid, kind, model, endpoint, origin, author, now])
        cur.execute("INSERT INTO model_history VALUES (?, 'add', ?, ?, ?, ?, ?)",
                    [mid, kind, model, endpoint, author, now])
        return True

    ensure_models(db)
    added = db.write(run)
    return get_model(db, mid), added


def remove_model(db: Database, entry: str, author: str | None = None) -> ModelEntry:
    """Take an entry (its id, or its spec) off the list; its row and history stay."""
    found = get_model(db, entry)
    if found is None:
        raise RevisionError(f"no model {entry!r} in the list")
    now = utc_now()

    def run(cur):
        cur.execute("UPDATE models SET removed = true, updated_by = ?, updated_at = ? WHERE id = ?",
                    [author, now, found.id])
        cur.execute("INSERT INTO model_history VALUES (?, 'remove', ?, ?, ?, ?, ?)",
                    [found.id, found.kind, found.model, found.endpoint, author, now])

    db.write(run)
    return found


def model_history(db: Database, limit: int = 200) -> list[dict]:
    return db.dicts('SELECT id, action, kind, model, endpoint, author, "at" FROM model_history '
                    'ORDER BY "at" DESC, action LIMIT ?', [limit])


def settings_specs(env: dict | None = None) -> list[str]:
    """The entries the settings name: ``$STUDIO_MODELS`` (comma-separated), then ``$STUDIO_REVISE_MODEL``.

    >>> settings_specs({"STUDIO_MODELS": "local:a/b, endpoint:http://h/v1|m", "STUDIO_REVISE_MODEL": "a/b"})
    ['local:a/b', 'endpoint:http://h/v1|m', 'a/b']
    """
    env = os.environ if env is None else env
    specs = [s.strip() for s in (env.get(MODELS_VARIABLE) or "").split(",") if s.strip()]
    default = (env.get(DEFAULT_VARIABLE) or "").strip()
    return specs + ([default] if default else [])


_seeded: "weakref.WeakKeyDictionary[Database, bool]" = weakref.WeakKeyDictionary()
_seed_lock = threading.Lock()


def ensure_models(db: Database, env: dict | None = None) -> None:
    """List the settings' entries the database has never seen (once per open database): an entry an
    admin removed stays removed. A malformed entry is reported on standard error and skipped."""
    with _seed_lock:
        if _seeded.get(db) or db.read_only:
            return
        _seeded[db] = True
        for spec in settings_specs(env):
            try:
                kind, model, endpoint = parse_spec(spec)
            except RevisionError as err:
                print(f"warning: ${MODELS_VARIABLE}: {err}", file=sys.stderr)
                continue
            mid = entry_id(kind, model, endpoint)
            if db.scalar("SELECT count(*) FROM models WHERE id = ?", [mid]):
                continue
            now = utc_now()
            db.write(lambda cur: (
                cur.execute("INSERT INTO models VALUES (?, ?, ?, ?, 'settings', false, NULL, ?)",
                            [mid, kind, model, endpoint, now]),
                cur.execute("INSERT INTO model_history VALUES (?, 'add', ?, ?, ?, 'settings', ?)",
                            [mid, kind, model, endpoint, now])))


# -- who may run what ---------------------------------------------------------------------------------


def choose(db: Database, who: access.Identity, pick: str | None = None, kind: str = "local", model: str = "",
           endpoint: str = "", device: str | None = None) -> Backend:
    """The backend ``who`` asked for, decided on the server: a typed ``model`` (with ``endpoint`` for
    the endpoint kind) when given, else the listed entry ``pick``. A typed model that is not in the
    list needs the admin role; RevisionError in one line otherwise."""
    model = (model or "").strip()
    if model:
        endpoint = (endpoint or "").strip() if kind == "endpoint" else ""
        listed = find_model(db, kind, model, endpoint or None)
        if listed is not None:
            return listed.backend(device)
        named = model if kind == "local" else endpoint or "an endpoint"
        allowed(who, f"running {named}, which is not in the model list,")
        if kind == "endpoint" and not endpoint:
            raise RevisionError("give the endpoint's URL")
        return make_backend(model, endpoint or None, device)
    entry = get_model(db, pick)
    if entry is None:
        if (pick or "").strip():
            raise RevisionError(f"model {pick.strip()!r} is not in the list (an admin may have removed it): "
                                "pick another")
        raise RevisionError("pick a model from the list" + (" or type one" if who.can("admin") else ""))
    return entry.backend(device)


def check_listed(db: Database, who: access.Identity, backend: dict) -> None:
    """Refuse ``who`` a stored job's model (``{kind, model, endpoint}``) that is not in the list,
    unless they are an admin."""
    kind = "endpoint" if backend.get("endpoint") else "local"
    if find_model(db, kind, backend.get("model") or "", backend.get("endpoint")) is None:
        allowed(who, f"running {backend.get('model')!r}, which is not in the model list,")


def allowed(who: access.Identity, what: str) -> None:
    try:
        access.require(who, "admin", what)
    except access.AccessDenied as err:
        raise RevisionError(f"{err}: pick a listed model") from None
