"""Pluralistic preferences: the same prompt judged and revised for different people.

* ``library`` -- personas (a name, attributes in words, a template rendering the system message),
  seeded from ``data/personas.jsonl``, edited in the database with every version kept; import and
  export as JSON lines;
* ``card`` -- a persona as escaped HTML, for any screen that shows who a pair is judged for;
* ``judge`` -- a model role-playing a persona labels pairs (stored as ``sim-PERSONA@MODEL``);
* ``ratings`` -- the same judge rates each reply 1-10 against chosen principles (stored as scores);
* ``divergence`` -- per pair, the entropy of the personas' labels (most divergent first), and per
  persona, agreement between human and simulated labels;
* ``export`` -- TRL's preference format with the persona's system message first in the prompt.

Revision for a persona lives in ``revise`` (it takes ``Persona.provenance()``); a label given as a
persona is an ordinary label whose options name it: ``labels.add_label(..., options={"persona":
NAME, "persona_version": V})``.

>>> p = Persona("ada", (("values", "rigor"),))
>>> p.system_message.splitlines()[0]
'You are talking with someone who describes themselves this way:'
"""

from .card import CARD_CSS, card_html
from .divergence import (SOURCES, Divergence, PersonaAgreement, dataset_divergence, human_vs_simulated,
                         label_entropy, persona_labels, persona_table, plurality, rank_divergence)
from .export import PersonaExport, export_persona_pairs, persona_pairs
from .judge import JudgeSummary, annotator_name, judge_messages, judge_pairs, parse_verdict, swapped
from .ratings import RatingSummary, parse_rating, rate_pairs, rating_messages, ratings_model
from .library import (DEFAULT_TEMPLATE, PERSONAS_FILE, Persona, PersonaError, attributes_text, check_persona,
                      delete_persona, ensure_personas, import_personas, parse_attributes, persona, persona_history,
                      personas, read_personas, render, resolve, save_persona, seed_personas, version_of,
                      write_personas)

__all__ = [
    "CARD_CSS", "card_html",
    "SOURCES", "Divergence", "PersonaAgreement", "dataset_divergence", "human_vs_simulated", "rank_divergence",
    "label_entropy", "persona_labels", "persona_table", "plurality",
    "PersonaExport", "export_persona_pairs", "persona_pairs",
    "JudgeSummary", "annotator_name", "judge_messages", "judge_pairs", "parse_verdict", "swapped",
    "RatingSummary", "parse_rating", "rate_pairs", "rating_messages", "ratings_model",
    "DEFAULT_TEMPLATE", "PERSONAS_FILE", "Persona", "PersonaError", "attributes_text", "check_persona",
    "delete_persona", "ensure_personas", "import_personas", "parse_attributes", "persona", "persona_history",
    "personas", "read_personas", "render", "resolve", "save_persona", "seed_personas", "version_of",
    "write_personas",
]
