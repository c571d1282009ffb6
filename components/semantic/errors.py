"""What goes wrong in semantic search, as one-line messages."""

from __future__ import annotations

from ..search.errors import SearchError


class SemanticError(SearchError):
    """A semantic search, embedding or similarity request that cannot be done, and why (one line)."""


class NoEmbeddings(SemanticError):
    """The dataset has no vectors (of the model asked for) for its current version."""
