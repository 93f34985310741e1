-- Collections that always end in a recorded outcome, and leases a dead replica cannot hold.

-- 'error': the collection failed for a reason that is not the document's own fault (a
-- worker killed, validation stopped on a busy machine, storage failing); the last
-- verdict and the published document stay, and the project is retried with back-off.
ALTER TABLE collections DROP CONSTRAINT collections_outcome_check;
ALTER TABLE collections ADD CONSTRAINT collections_outcome_check
    CHECK (outcome IN ('changed', 'unchanged', 'invalid', 'unreachable', 'refused', 'error'));

-- Every replica says it is alive every few seconds; a lease whose holder has gone
-- quiet is free to take, long before the lease itself expires.
CREATE TABLE replicas (
    name          text PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_lease_owner ON projects (lease_owner) WHERE lease_owner IS NOT NULL;

-- A tsvector holds at most 1 MB: search looks at the first 50,000 characters of each
-- text, so a document with a megabyte-long description is still stored and found.
CREATE OR REPLACE FUNCTION catalog_tsvector(value text, weight "char") RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', left(coalesce(value, ''), 50000)), weight)
        || setweight(to_tsvector('dutch', left(coalesce(value, ''), 50000)), weight)
        || setweight(to_tsvector('simple', left(coalesce(value, ''), 50000)), weight)
$$;

CREATE OR REPLACE FUNCTION projects_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    doc record;
    ops text;
BEGIN
    SELECT title, description INTO doc FROM documents WHERE id = NEW.published_document_id;
    SELECT string_agg(catalog_words(path) || ' ' || catalog_words(coalesce(operation_id, '')) || ' '
                      || coalesce(summary, ''), ' ')
      INTO ops
      FROM operations WHERE document_id = NEW.published_document_id;
    BEGIN
        NEW.search_vector :=
            catalog_tsvector(catalog_words(NEW.name) || ' ' || coalesce(NEW.title, '') || ' ' || coalesce(doc.title, ''), 'A')
            || catalog_tsvector(catalog_join(NEW.tags), 'A')
            || catalog_tsvector(coalesce(NEW.description, '') || ' ' || coalesce(doc.description, ''), 'B')
            || catalog_tsvector(ops, 'C');
    EXCEPTION WHEN program_limit_exceeded THEN
        -- Still too much for one tsvector: the name, titles and tags alone.
        NEW.search_vector :=
            catalog_tsvector(catalog_words(NEW.name) || ' ' || coalesce(NEW.title, '') || ' ' || coalesce(doc.title, ''), 'A')
            || catalog_tsvector(catalog_join(NEW.tags), 'A');
    END;
    RETURN NEW;
END
$$;
