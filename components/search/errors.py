"""The errors of search: each explains itself in one line for the user."""


class SearchError(Exception):
    """A search or index problem explained in one line for the user."""


class QuerySyntaxError(SearchError):
    """A Lucene query the parser rejected; the message is the parser's."""


class IndexNotReady(SearchError):
    """A dataset without a usable index (none, stale, or its folder gone)."""


class TooManyClauses(QuerySyntaxError):
    """A query over Lucene's clause limit (1,024 words, terms or clauses): refused by the parser, or
    when a wildcard is rewritten into its terms."""


class TooManyTerms(TooManyClauses):
    """Wildcards, fuzzy words or regular expressions standing for more than 1,024 terms of the index."""


class OverBudget(SearchError):
    """A search stopped at its time budget (``java.budget_ms``)."""
