"""kb: a searchable knowledge base for support troubleshooting articles.

The pipeline, one module per stage: articles (files on disk) -> parse (Article) -> index (Whoosh)
-> search (SearchEngine) -> web (Flask) / cli (click).
"""

__version__ = "0.1.0"
