"""The principle editor of the Revise tab: add or change principles; every version is kept."""

from __future__ import annotations

import gradio as gr

from .. import revise as rv
from ..store import Database
from ..text import clip
from .common import escape, requires
from ..policies import PRINCIPLE

HISTORY_COLUMNS = ["at", "principle", "version", "action", "author", "title", "text"]
NEW = "(new)"


def principle_choices(db: Database) -> list[tuple[str, str]]:
    return [(f"{p.group} · {p.title}" + (" (template)" if p.template else ""), p.id) for p in rv.principles(db)]


def default_principles(db: Database) -> list[str]:
    return [p.id for p in rv.principles(db) if p.default]


def history_table(db: Database, pid: str | None = None) -> list[list]:
    return [[str(h["at"])[:19], h["id"], h["version"], h["action"], h["author"] or "", h["title"], clip(h["text"], 120)]
            for h in rv.principle_history(db, pid or None, limit=100)]


def save(db: Database, pid: str, group: str, title: str, text: str, is_default: bool,
         author: str | None) -> tuple[str, rv.Principle | None]:
    """Save a principle from the editor: a line saying what happened, and the principle saved."""
    try:
        p = rv.save_principle(db, {"id": pid, "group": group or "other", "title": title, "text": text,
                                   "default": bool(is_default)}, (author or "").strip() or None)
    except rv.RevisionError as err:
        return f"⚠️ {escape(err)}", None
    return f"✅ Saved **{escape(p.id)}** (version {p.version}).", p


def delete(db: Database, pid: str | None, author: str | None) -> tuple[str, bool]:
    if not pid or not rv.delete_principle(db, pid.strip(), (author or "").strip() or None):
        return f"⚠️ No principle {escape(pid)!s} to delete.", False
    return f"Deleted **{escape(pid)}** (its history is kept).", True


def build(db: Database, picks: gr.CheckboxGroup, who: gr.Textbox) -> None:
    """The editor, inside the Revise tab; ``picks`` (the ticked principles) follows its changes."""
    with gr.Accordion("Principle editor", open=False):
        gr.Markdown("Add or change principles. Every version is kept (history below); a principle with "
                    "`{slots}` in its text is a template whose slots are filled when it is used.")
        with gr.Row():
            pick = gr.Dropdown(label="Principle", choices=[NEW] + [c[1] for c in principle_choices(db)],
                               value=NEW, scale=2, elem_id="revise-edit-pick")
            pid = gr.Textbox(label="Id", placeholder="lower-case-with-dashes", scale=2, elem_id="revise-edit-id")
            group = gr.Textbox(label="Group", placeholder="harmlessness, honesty, …", scale=2,
                               elem_id="revise-edit-group")
            title = gr.Textbox(label="Title", scale=3, elem_id="revise-edit-title")
        text = gr.Textbox(label="Text the model reads", lines=3, elem_id="revise-edit-text")
        with gr.Row():
            is_default = gr.Checkbox(label="Used by default", value=False)
            save_btn = gr.Button("Save principle", variant="primary", elem_id="revise-edit-save")
            delete_btn = gr.Button("Delete", variant="stop")
        result = gr.Markdown(elem_id="revise-edit-result")
        history = gr.Dataframe(headers=HISTORY_COLUMNS, value=history_table(db), interactive=False, wrap=True,
                               column_widths=["13%", "15%", "7%", "8%", "8%", "17%", "32%"])

    @requires(PRINCIPLE.read)
    def show(chosen):
        p = rv.principle_row(db, chosen) if chosen and chosen != NEW else None
        if p is None:
            return "", "", "", "", False, history_table(db)
        return p["id"], p["grp"], p["title"], p["text"], bool(p["is_default"]), history_table(db, p["id"])

    pick.input(show, pick, [pid, group, title, text, is_default, history])

    def refreshed(selected, current):
        choices = principle_choices(db)
        ids = {c[1] for c in choices}
        return (gr.update(choices=choices, value=[s for s in (selected or []) if s in ids]),
                gr.update(choices=[NEW] + [c[1] for c in choices], value=current if current in ids else NEW))

    @requires(PRINCIPLE.edit)
    def on_save(p_id, p_group, p_title, p_text, p_default, author, selected):
        line, p = save(db, p_id, p_group, p_title, p_text, p_default, author)
        if p is None:
            return line, gr.update(), gr.update(), gr.update()
        return line, *refreshed(selected, p.id), history_table(db, p.id)

    save_btn.click(on_save, [pid, group, title, text, is_default, who, picks], [result, picks, pick, history])

    @requires(PRINCIPLE.edit)
    def on_delete(p_id, author, selected):
        line, deleted = delete(db, p_id, author)
        if not deleted:
            return line, gr.update(), gr.update(), gr.update()
        return line, *refreshed(selected, None), history_table(db, p_id)

    delete_btn.click(on_delete, [pid, who, picks], [result, picks, pick, history])
