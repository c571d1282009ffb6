"""Who may do what: one policy per resource, each action with the least role it needs.

Every page handler names the action it performs (``views.common.requires(policies.LABEL.create)``),
and ``views.guard`` checks the caller's identity against it on the server before the handler runs;
every CLI command names one in ``COMMANDS`` and runs as the machine's owner (``access.LOCAL``), whose
identity the command line passes on explicitly. Ownership rules live here too: a signed-in annotator
labels only as themselves (``label_as``), and what someone did is recorded under their own name
(``recorded_name``).

>>> LABEL.create.allows(access.Identity("bo", "viewer", "oauth"))
False
>>> allow(LABEL.create, access.Identity("bo", "viewer", "oauth"))
Traceback (most recent call last):
...
components.access.AccessDenied: labeling needs the annotator role; you are bo (viewer)
>>> str(DATASET.delete), DATASET.delete.role
('dataset.delete', 'admin')
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from . import access
from .access import Identity


@dataclass(frozen=True)
class Action:
    """One thing a caller may do to a resource: ``resource.verb``, the least role, and the words an
    error uses for it."""

    resource: str
    verb: str
    role: str
    what: str

    def __post_init__(self):
        if self.role not in access.ROLES:
            raise ValueError(f"unknown role {self.role!r}")

    def __str__(self) -> str:
        return f"{self.resource}.{self.verb}"

    def allows(self, who: Identity) -> bool:
        return who.can(self.role)


def allow(action: Action, who: Identity) -> Identity:
    """``who`` when ``action`` is allowed to them, else ``access.AccessDenied`` in one line."""
    return access.require(who, action.role, action.what)


def _policy(resource: str, **verbs: tuple[str, str]):
    """A frozen record of ``resource``'s actions, one field per verb."""
    cls = dataclass(frozen=True)(type(f"{resource.title()}Policy", (), {"__annotations__": dict.fromkeys(verbs, Action)}))
    return cls(**{verb: Action(resource, verb, role, what) for verb, (role, what) in verbs.items()})


PAGE = _policy("page", open=("viewer", "opening the page"))
DATASET = _policy(
    "dataset",
    list=("viewer", "listing datasets"),
    read=("viewer", "reading a dataset"),
    search=("viewer", "searching"),
    stats=("viewer", "reading statistics"),
    load=("admin", "loading data"),
    index=("admin", "building a search index"),
    rename=("admin", "renaming a dataset"),
    delete=("admin", "deleting a dataset"),
    export=("admin", "exporting"),
    export_clean=("admin", "exporting the clean subset"),
    push=("admin", "pushing to the Hub"),
    embed=("admin", "embedding a dataset"),
)
LABEL = _policy(
    "label",
    queue=("viewer", "reading a labeling queue"),
    agreement=("viewer", "reading agreement"),
    create=("annotator", "labeling"),
    undo=("annotator", "undoing a label"),
    review=("reviewer", "reviewing disagreements"),
    gold=("admin", "marking gold pairs"),
    export_log=("admin", "exporting the label log"),
)
REVISION = _policy(
    "revision",
    read=("viewer", "reading revisions"),
    stop=("viewer", "stopping a revision"),
    run=("annotator", "revising"),
    batch=("annotator", "revising a batch"),
    accept=("annotator", "accepting a revision"),
    reject=("annotator", "rejecting a revision"),
)
PRINCIPLE = _policy("principle", read=("viewer", "reading principles"), edit=("admin", "editing principles"))
PERSONA = _policy(
    "persona",
    read=("viewer", "reading a persona"),
    edit=("admin", "editing personas"),
    import_=("admin", "importing personas"),
    export=("admin", "exporting the persona library"),
    judge=("admin", "labeling as a persona"),
)
MODEL = _policy(
    "model",
    choose=("viewer", "choosing a backend"),
    load=("annotator", "loading a model"),
    add=("admin", "adding a model to the list"),
    remove=("admin", "removing a model from the list"),
    score=("admin", "scoring with a reward model"),
    jobs=("viewer", "reading model jobs"),
    cancel=("admin", "cancelling a model job"),
)
PROJECT = _policy(
    "project",
    figures=("admin", "reading the project's figures"),
    settings=("admin", "changing a dataset's settings"),
    schema=("admin", "changing a dataset's label schema"),
    blind=("admin", "changing a dataset's blind setting"),
)
USER = _policy("user", list=("admin", "listing users"), add=("admin", "adding a user"),
               remove=("admin", "removing a user"))
SERVER = _policy("server", serve=("admin", "serving the app"))

POLICIES = (PAGE, DATASET, LABEL, REVISION, PRINCIPLE, PERSONA, MODEL, PROJECT, USER, SERVER)
ACTIONS = frozenset(getattr(p, f.name) for p in POLICIES for f in fields(p))
"""Every action of every policy."""

COMMANDS = {
    "serve": SERVER.serve, "ingest": DATASET.load, "datasets": DATASET.list, "index": DATASET.index,
    "search": DATASET.search, "embed": DATASET.embed, "similar": DATASET.search, "stats": DATASET.stats,
    "contamination": DATASET.stats, "export": DATASET.export, "settings": PROJECT.settings,
    "revise": REVISION.batch, "personas": PERSONA.edit, "judge": PERSONA.judge, "models": MODEL.add,
    "users": USER.add, "score": MODEL.score, "jobs": MODEL.cancel,
}
"""The action of each CLI command (the most a command of that name can do: ``users`` lists and adds)."""


def command(name: str, who: Identity = access.LOCAL) -> Identity:
    """Check CLI command ``name`` for ``who`` (the machine's owner, unless a caller says otherwise)."""
    action = COMMANDS.get(name)
    if action is None:
        raise access.AccessDenied(f"the command {name!r} names no policy action")
    return allow(action, who)


# -- ownership ----------------------------------------------------------------------------------------

def signed_in(who: Identity | None) -> bool:
    """Recognized by a sign-in (a password or Hugging Face), not the open local tool."""
    return who is not None and who.via in ("password", "oauth")


def label_as(who: Identity | None, typed: str | None) -> str | None:
    """The annotator a label is recorded under: a signed-in caller's own name whatever was typed (or
    sent to the API); in the open local tool, the name typed in; an anonymous caller none (None).

    >>> label_as(Identity("ada", "annotator", "password"), "mallory"), label_as(access.LOCAL, " bo ")
    ('ada', ' bo ')
    >>> label_as(access.ANONYMOUS, "bo") is None
    True
    """
    if signed_in(who):
        return who.name
    if who is not None and who.via in ("anonymous", "removed"):
        return None
    return typed


def recorded_name(who: Identity | None, typed: str | None) -> str | None:
    """The name recorded for what someone did (accepted a revision, edited a principle): the
    signed-in user's whatever was typed; in the open local tool, what was typed (or nobody).

    >>> recorded_name(Identity("ada", "annotator", "oauth"), "mallory"), recorded_name(access.LOCAL, " bo ")
    ('ada', 'bo')
    """
    if signed_in(who):
        return who.name
    return (typed or "").strip() or None


def cli_name(args) -> str:
    """The name the command line's work is recorded under: its caller's (``args.who``, the machine's
    owner unless a caller said otherwise) through ``recorded_name``, "cli" for the owner."""
    return recorded_name(getattr(args, "who", access.LOCAL), "cli") or "cli"

