"""Labels: the vocabulary, labeling queues, progress, agreement between annotators, and export.

Every label is an event appended to DuckDB's ``label_events``; the ``current_labels`` view gives the
latest event of each (pair, annotator) that was not undone (``events``). ``queues`` says which pair an
annotator sees next, ``agreement`` how far annotators agree, ``export`` writes what they decided;
``settings`` holds a dataset's project settings (blind labeling, overlap, guidelines, the label
schema) and ``datasets`` renames and deletes. ``label_schema`` says what a label holds (binary or a
5/7-point scale, aspects, reasons, a rationale; ``ordinal`` grades them), ``ranking`` ranks the
responses of an N-response pair, ``binarize`` turns ratings and rankings into pairs. A team's project: ``project`` (the overlap queue with its reservations, labels
checked against free slots, progress), ``gold`` (pairs with a known answer, accuracy), ``review``
(final labels of disagreements) and ``team`` (per-annotator figures).

>>> [lab.key for lab in VOCABULARY]
['1', '2', '3', '4', 'S']
"""

from .agreement import (MAX_PAIRWISE, Agreement, agreement, busiest_pair, cohen_kappa, confusion, disagreements,
                        judgments, krippendorff_alpha)
from .events import (BY_NAME, DEFAULT_TAGS, JUDGMENTS, LABELS, MAJORITY_SQL, MAX_NOTE, MAX_TAGS, VOCABULARY, Label,
                     LabelError, add_label, add_label_event, check_annotator, check_label, check_pairs, check_row,
                     clean_confidence, clean_tags, current_label, current_labels, label_annotators,
                     label_event_count, label_log, label_progress, label_tags, labeled_rows, majority_labels,
                     majority_rows, pair_labels, undo, undo_last_label)
from .export import (FILE_FORMATS, NO_PREFERENCE, STYLES, ExportSummary, apply_preference, decisions, export_log,
                     export_pairs, file_format, hub_token, preference_labels, prompt_text, push_to_hub)
from .gold import gold_accuracy, gold_labels, import_gold, mark_gold, read_gold_file
from .project import RESERVATION_SECONDS, duration, next_pair, overlap, progress_line, release, submit
from .project import progress as project_progress
from .review import resolve, review_queue, reviewed, reviewed_labels
from .team import annotator_figures, pairwise_agreement
from .datasets import delete_dataset, rename_dataset
from .events import EXTRA_COLUMNS, graded_labels
from .label_schema import BINARY, check_graded, clean_schema, is_graded, scale_keys
from .queues import QUEUES, Queue, next_row, next_unlabeled, open_queue, progress, search_pairs, shuffled_rows
from .settings import (
    SETTINGS, blind_title, clean_setting, guidelines_version, is_blind, label_schema, set_setting, setting,
    setting_history, setting_version, swapped, unblind,
)
from .settings import settings as project_settings

__all__ = [
    "MAX_PAIRWISE", "Agreement", "agreement", "busiest_pair", "cohen_kappa", "confusion", "disagreements",
    "judgments", "krippendorff_alpha",
    "BY_NAME", "DEFAULT_TAGS", "JUDGMENTS", "LABELS", "MAJORITY_SQL", "MAX_NOTE", "MAX_TAGS", "VOCABULARY", "Label",
    "LabelError", "add_label", "add_label_event", "check_annotator", "check_label", "check_pairs", "check_row",
    "clean_confidence", "clean_tags", "current_label", "current_labels", "label_annotators", "label_event_count",
    "label_log", "label_progress", "label_tags", "labeled_rows", "majority_labels", "majority_rows", "pair_labels",
    "undo", "undo_last_label",
    "FILE_FORMATS", "NO_PREFERENCE", "STYLES", "ExportSummary", "apply_preference", "decisions", "export_log",
    "export_pairs", "file_format", "hub_token", "preference_labels", "prompt_text", "push_to_hub",
    "gold_accuracy", "gold_labels", "import_gold", "mark_gold", "read_gold_file",
    "RESERVATION_SECONDS", "duration", "next_pair", "overlap", "progress_line", "release", "submit",
    "project_progress", "resolve", "review_queue", "reviewed", "reviewed_labels", "annotator_figures",
    "pairwise_agreement",
    "QUEUES", "Queue", "next_row", "next_unlabeled", "open_queue", "progress", "search_pairs", "shuffled_rows",
    "delete_dataset", "rename_dataset", "EXTRA_COLUMNS", "graded_labels",
    "BINARY", "check_graded", "clean_schema", "is_graded", "label_schema", "scale_keys",
    "SETTINGS", "blind_title", "clean_setting", "guidelines_version", "is_blind", "set_setting", "setting",
    "setting_history", "setting_version", "project_settings", "swapped", "unblind",
]
