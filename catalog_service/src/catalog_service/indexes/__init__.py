"""In-memory indexes of the catalog, rebuilt from PostgreSQL as it changes: pages and
searches that miss the response cache are answered without a query."""
