"""Semantic search beside BM25: embeddings of a dataset's rows, a Faiss index over them, semantic
and hybrid (reciprocal rank fusion) search, similar rows, embedding clusters and a 2-D map.

Modules, lowest first:

- ``errors``: SemanticError, NoEmbeddings.
- ``encoder``: sentence-transformers models (a plain transformers encoder gets mean pooling), their
  revision, normalized vectors.
- ``step``: the embedding step of the job system (``EmbedStep``).
- ``embed``: ``embed_dataset``: the step run as a job (here or on Ray).
- ``vectors``: the stored vector sets; which datasets have them; reading one into numpy.
- ``index``: Faiss indexes: exact (``IndexFlatIP``) or IVF with exact re-scoring.
- ``filters``: the search filters as the rows that pass, the same rows BM25 keeps.
- ``search``: ``semantic_search``, ``hybrid_search``, ``rrf``, ``search`` (all three modes).
- ``similar``: ``similar``: nearest rows by embedding, or Lucene's MoreLikeThis; ``similar_search``: the
  same as a page of search results.
- ``clusters``: ``embedding_clusters``: near-duplicate clusters by embedding (cosine, Faiss, scipy).
- the 2-D map of the embeddings (scikit-learn PCA, a plotly figure) is ``insights.projection``.

For a page: ``datasets_with_embeddings(db)`` says where semantic search can be offered;
``search(db, datasets, query, mode=...)``, ``similar(db, dataset, row, k)`` (``.rows`` is a
labeling queue) and ``map_figure(db, dataset, color=...)`` (each point's ``customdata`` is its row).
Importing this package is cheap: faiss, torch and sentence-transformers load on first use.
"""

from .embed import embed_dataset, embed_step
from .errors import NoEmbeddings, SemanticError
from .search import MODES, RRF_K, SemanticHit, SemanticResults, hybrid_search, rrf, search, semantic_search
from .similar import Neighbour, Similar, similar, similar_search
from .step import FIELDS, EmbedStep
from .vectors import VectorSet, current_set, datasets_with_embeddings, has_embeddings, vector_sets

__all__ = [
    "FIELDS", "MODES", "RRF_K", "EmbedStep", "Neighbour", "NoEmbeddings", "SemanticError", "SemanticHit",
    "SemanticResults", "Similar", "VectorSet", "current_set", "datasets_with_embeddings", "embed_dataset",
    "embed_step", "has_embeddings", "hybrid_search", "rrf", "search", "semantic_search", "similar", "similar_search", "vector_sets",
]
