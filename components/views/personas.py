"""Personas: the persona library (cards, editor with history, import and export as JSON lines) and
where the personas disagree on a dataset's pairs (label entropy per pair, human vs simulated).

Revising for a persona happens in the Revise tab (its Persona list); labeling as a persona records
``{"persona": NAME, "persona_version": V}`` in the label's options; a model judge role-playing a
persona labels pairs from the command line (``python app.py judge``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from .. import labels
from .. import personas as pz
from ..store import Database
from ..text import clip
from .common import Studio, dataset_choices, escape, requires
from ..policies import PERSONA

TAB_ID = "personas"
CSS = pz.CARD_CSS
LIBRARY_COLUMNS = ["persona", "version", "attributes"]
HISTORY_COLUMNS = ["at", "persona", "version", "action", "author", "attributes"]
DIVERGENCE_COLUMNS = ["row", "personas", "entropy (bits)", "labels"]
AGREEMENT_COLUMNS = ["persona", "humans", "simulated", "pairs both judged", "raw agreement", "Cohen's kappa"]
NEW = "(new)"


# -- plain functions (what the handlers call; tests call them too) -------------------------------


def library_table(db: Database) -> list[list]:
    return [[p.name, p.version, clip(" · ".join(v for _, v in p.attributes), 160)] for p in pz.personas(db)]


def history_table(db: Database, name: str | None = None) -> list[list]:
    return [[str(h["at"])[:19], h["name"], h["version"], h["action"], h["author"] or "",
             clip("; ".join(f"{k}: {v}" for k, v in (h["attributes"] or {}).items()), 140)]
            for h in pz.persona_history(db, name or None, limit=100)]


def show(db: Database, name: str | None) -> tuple[str, str, str, str]:
    """(card HTML, name, attributes as 'name: words' lines, template) of persona ``name``; blanks for a new one."""
    p = pz.persona(db, name) if name and name != NEW else None
    if p is None:
        return "", "", "", pz.DEFAULT_TEMPLATE
    return pz.card_html(p), p.name, pz.attributes_text(p), p.template


def save(db: Database, name: str, attributes: str, template: str, author: str | None) -> tuple[str, pz.Persona | None]:
    """Save a persona from the editor: a line saying what happened, and the persona saved."""
    try:
        attrs = pz.parse_attributes(attributes)
        p, what = pz.save_persona(db, {"name": (name or "").strip(), "attributes": attrs,
                                       "template": template or None}, author)
    except pz.PersonaError as err:
        return f"⚠️ {escape(err)}", None
    if what == "unchanged":
        return f"Nothing changed in **{escape(p.name)}** (version {p.version}).", p
    return f"✅ Saved **{escape(p.name)}** ({what}, version {p.version}).", p


def import_file(db: Database, path: str | None, author: str | None) -> str:
    if not path:
        return "⚠️ Choose a .jsonl file of personas first."
    try:
        counts = pz.import_personas(db, path, author)
    except pz.PersonaError as err:
        return f"⚠️ {escape(str(err).replace(str(path), Path(path).name))}"
    return "✅ Imported: " + ", ".join(f"{n} {what}" for what, n in counts.items())


def export_file(db: Database) -> str:
    out = Path(tempfile.mkdtemp(prefix="personas-")) / "personas.jsonl"
    pz.write_personas(pz.personas(db), out)
    return str(out)


def divergence_view(db: Database, dataset: str | None, source: str = "all") -> tuple[str, list[list], list[list]]:
    """(a line, the pairs ranked by divergence, human vs simulated agreement per persona)."""
    if not dataset:
        return "Pick a dataset of pairs labeled as personas.", [], []
    try:
        ranked = pz.dataset_divergence(db, dataset, source or "all")
        agree = pz.human_vs_simulated(db, dataset)
    except (labels.LabelError, ValueError) as err:
        return f"⚠️ {escape(err)}", [], []
    table = [[d.row, d.personas, round(d.entropy, 3), ", ".join(f"{p}: {lab}" for p, lab in d.labels.items())]
             for d in ranked]
    split = sum(1 for d in ranked if d.entropy > 0)
    line = (f"**{len(ranked):,}** pairs of **{escape(dataset)}** labeled by two or more personas ({escape(source)} "
            f"labels); **{split:,}** of them split the personas, most divergent first." if ranked else
            f"No pair of **{escape(dataset)}** has labels from two or more personas yet "
            "(label as a persona, or run `python app.py judge`).")
    fmt = lambda x: "—" if x is None else round(x, 3)  # noqa: E731
    agreement = [[a.persona, ", ".join(a.humans) or "—", ", ".join(a.simulated) or "—", a.items, fmt(a.raw),
                  fmt(a.kappa)] for a in agree]
    return line, table, agreement


# -- the view -------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Personas", id=TAB_ID):
        gr.Markdown(
            "The same prompt judged and revised for **different people**. A persona is a name, attributes "
            "in words and the **system message** rendered from them. Revise for a persona in the Revise tab; "
            "a model role-playing a persona labels pairs with `python app.py judge`; below, where they disagree."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                table = gr.Dataframe(headers=LIBRARY_COLUMNS, value=library_table(db), interactive=False, wrap=True,
                                     elem_id="personas-table", column_widths=["22%", "8%", "70%"])
            with gr.Column(scale=2):
                pick = gr.Dropdown(label="Persona", choices=[NEW] + [p.name for p in pz.personas(db)], value=NEW,
                                   elem_id="personas-pick")
                card = gr.HTML(elem_id="personas-card")
        with gr.Accordion("Edit (every version is kept)", open=False):
            with gr.Row():
                name = gr.Textbox(label="Name", placeholder="lower-case-with-dashes", scale=1, elem_id="personas-name")
                attributes = gr.Textbox(label="Attributes, one 'name: words' per line", lines=6, scale=3,
                                        elem_id="personas-attributes")
            template = gr.Textbox(label="System message template ({profile}, {name} or any {attribute})", lines=4,
                                  value=pz.DEFAULT_TEMPLATE, elem_id="personas-template")
            with gr.Row():
                save_btn = gr.Button("Save persona", variant="primary", elem_id="personas-save")
                delete_btn = gr.Button("Delete", variant="stop", elem_id="personas-delete")
            result = gr.Markdown(elem_id="personas-result")
            history = gr.Dataframe(headers=HISTORY_COLUMNS, value=history_table(db), interactive=False, wrap=True)
        with gr.Accordion("Import and export (JSON lines)", open=False):
            with gr.Row():
                upload = gr.File(label="Personas file (.jsonl)", file_types=[".jsonl"], elem_id="personas-upload")
                with gr.Column():
                    import_btn = gr.Button("Import", elem_id="personas-import")
                    export_btn = gr.Button("Export the library", elem_id="personas-export")
            download = gr.File(label="Exported library", interactive=False)
            imported = gr.Markdown(elem_id="personas-imported")
        gr.Markdown("### Where the personas disagree")
        with gr.Row():
            dataset = gr.Dropdown(label="Dataset", choices=dataset_choices(db, ("pairs",)), value=None, scale=3,
                                  elem_id="personas-dataset")
            source = gr.Radio(list(pz.SOURCES), value="all", label="Labels", scale=2, elem_id="personas-source",
                              info="human: people labeling as a persona · simulated: model judges")
            go = gr.Button("Show", scale=0, elem_id="personas-divergence-go")
        summary = gr.Markdown(elem_id="personas-divergence-summary")
        ranked = gr.Dataframe(headers=DIVERGENCE_COLUMNS, interactive=False, wrap=True,
                              elem_id="personas-divergence")
        agreement = gr.Dataframe(headers=AGREEMENT_COLUMNS, interactive=False, elem_id="personas-agreement",
                                 label="Human vs simulated, per persona")
        studio.follow(dataset, lambda: dataset_choices(db, ("pairs",)))

        # -- handlers ---------------------------------------------------------------------------

        @requires(PERSONA.read)
        def on_pick(chosen):
            c, n, a, t = show(db, chosen)
            return c, n, a, t, history_table(db, chosen if chosen != NEW else None)

        pick.input(on_pick, pick, [card, name, attributes, template, history])

        @requires(PERSONA.read)
        def on_select(evt: gr.SelectData):
            chosen = str((evt.row_value or [NEW])[0])
            return chosen, *on_pick(chosen)

        table.select(on_select, None, [pick, card, name, attributes, template, history])

        def refreshed(current):
            names = [p.name for p in pz.personas(db)]
            return (library_table(db), gr.update(choices=[NEW] + names, value=current if current in names else NEW))

        @requires(PERSONA.edit)
        def on_save(n, a, t, *, who):
            line, p = save(db, n, a, t, who.name)
            if p is None:
                return line, gr.update(), gr.update(), gr.update(), gr.update()
            return line, *refreshed(p.name), pz.card_html(p), history_table(db, p.name)

        save_btn.click(on_save, [name, attributes, template], [result, table, pick, card, history])

        @requires(PERSONA.edit)
        def on_delete(n, *, who):
            n = (n or "").strip()
            if not n or not pz.delete_persona(db, n, who.name):
                return f"⚠️ No persona {escape(n)!s} to delete.", gr.update(), gr.update(), gr.update(), gr.update()
            return f"Deleted **{escape(n)}** (its history is kept).", *refreshed(None), "", history_table(db, n)

        delete_btn.click(on_delete, name, [result, table, pick, card, history])

        @requires(PERSONA.import_)
        def on_import(path, *, who):
            line = import_file(db, path, who.name)
            return line, *refreshed(None), history_table(db)

        import_btn.click(on_import, upload, [imported, table, pick, history])

        @requires(PERSONA.export)
        def on_export():
            return export_file(db)

        export_btn.click(on_export, None, download)

        @requires(PERSONA.read)
        def on_divergence(d, s):
            return divergence_view(db, d, s)

        go.click(on_divergence, [dataset, source], [summary, ranked, agreement])
        source.input(on_divergence, [dataset, source], [summary, ranked, agreement])
        dataset.input(on_divergence, [dataset, source], [summary, ranked, agreement])
