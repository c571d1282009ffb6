"""Labels: the vocabulary, labeling queues, progress, agreement between annotators, and export.

Every label is an event appended to DuckDB's ``label_events``; the ``current_labels`` view gives the
latest event of each (pair, annotator) that was not undone (``events``). ``queues`` says which pair an
annotator sees next, ``agreement`` how far annotators agree, ``export`` writes what they decided;
``settings`` holds a dataset's project settings (blind labeling) and ``datasets`` renames and deletes.

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
from .export import (FILE_FORMATS, NO_PREFERENCE, STYLES, ExportSummary, apply_preference, export_log, export_pairs,
                     file_format, hub_token, preference_labels, prompt_text, push_to_hub)
from .datasets import delete_dataset, rename_dataset
from .queues import QUEUES, Queue, next_row, next_unlabeled, open_queue, progress, search_pairs, shuffled_rows
from .settings import SETTINGS, blind_title, is_blind, set_setting, setting, setting_history, swapped, unblind

__all__ = [
    "MAX_PAIRWISE", "Agreement", "agreement", "busiest_pair", "cohen_kappa", "confusion", "disagreements",
    "judgments", "krippendorff_alpha",
    "BY_NAME", "DEFAULT_TAGS", "JUDGMENTS", "LABELS", "MAJORITY_SQL", "MAX_NOTE", "MAX_TAGS", "VOCABULARY", "Label",
    "LabelError", "add_label", "add_label_event", "check_annotator", "check_label", "check_pairs", "check_row",
    "clean_confidence", "clean_tags", "current_label", "current_labels", "label_annotators", "label_event_count",
    "label_log", "label_progress", "label_tags", "labeled_rows", "majority_labels", "majority_rows", "pair_labels",
    "undo", "undo_last_label",
    "FILE_FORMATS", "NO_PREFERENCE", "STYLES", "ExportSummary", "apply_preference", "export_log", "export_pairs",
    "file_format", "hub_token", "preference_labels", "prompt_text", "push_to_hub",
    "QUEUES", "Queue", "next_row", "next_unlabeled", "open_queue", "progress", "search_pairs", "shuffled_rows",
    "delete_dataset", "rename_dataset",
    "SETTINGS", "blind_title", "is_blind", "set_setting", "setting", "setting_history", "swapped", "unblind",
]
