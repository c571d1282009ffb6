"""The one error every part of revision raises."""


class RevisionError(Exception):
    """A revision that could not run, explained in one line."""
