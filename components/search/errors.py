"""The errors of search: each explains itself in one line for the user."""


class SearchError(Exception):
    """A search or index problem explained in one line for the user."""


class QuerySyntaxError(SearchError):
    """A Lucene query the parser rejected; the message is the parser's."""


class IndexNotReady(SearchError):
    """A dataset without a usable index (none, stale, or its folder gone)."""
