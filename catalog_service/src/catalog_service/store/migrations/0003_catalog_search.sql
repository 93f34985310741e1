-- The published catalog: full-text search over projects and over operations, and a
-- notification whenever the catalog changes (replicas drop their cached responses).

-- Words of identifiers: "/meldingen/{id}" -> "meldingen id", "listContainers" ->
-- "list Containers listContainers".
CREATE FUNCTION catalog_words(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        regexp_replace(regexp_replace(value, '([a-z0-9])([A-Z])', '\1 \2', 'g'), '[^[:alnum:]]+', ' ', 'g')
        || ' ' || value,
        '')
$$;

-- English and Dutch stemming both, plus the words as they are: a search in either
-- language, or for an exact identifier, finds the API.
CREATE FUNCTION catalog_tsvector(value text, weight "char") RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', coalesce(value, '')), weight)
        || setweight(to_tsvector('dutch', coalesce(value, '')), weight)
        || setweight(to_tsvector('simple', coalesce(value, '')), weight)
$$;

-- array_to_string is only STABLE (for arrays of any type); for text[] it is immutable.
CREATE FUNCTION catalog_join(value text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_to_string(value, ' '), '')
$$;

CREATE FUNCTION catalog_tsquery(q text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT websearch_to_tsquery('english', q)
        || websearch_to_tsquery('dutch', q)
        || websearch_to_tsquery('simple', q)
$$;

ALTER TABLE operations ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    catalog_tsvector(catalog_words(coalesce(operation_id, '')), 'A')
    || catalog_tsvector(catalog_words(path), 'A')
    || catalog_tsvector(coalesce(summary, ''), 'B')
    || catalog_tsvector(catalog_join(tags), 'C')
) STORED;
CREATE INDEX operations_search ON operations USING gin (search_vector);
CREATE INDEX operations_by_method ON operations (method, document_id);

ALTER TABLE projects ADD COLUMN search_vector tsvector NOT NULL DEFAULT ''::tsvector;
CREATE INDEX projects_search ON projects USING gin (search_vector);
CREATE INDEX projects_tags ON projects USING gin (tags);
CREATE INDEX projects_status_name ON projects (status, name);
CREATE INDEX projects_published ON projects (published_document_id);
CREATE INDEX documents_by_project ON documents (project_id, collected_at DESC, id DESC);

-- What a search looks in: the project's own title, description and tags, and the
-- published document's title, description, paths and operation summaries.
CREATE FUNCTION projects_search_vector() RETURNS trigger
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
    NEW.search_vector :=
        catalog_tsvector(catalog_words(NEW.name) || ' ' || coalesce(NEW.title, '') || ' ' || coalesce(doc.title, ''), 'A')
        || catalog_tsvector(catalog_join(NEW.tags), 'A')
        || catalog_tsvector(coalesce(NEW.description, '') || ' ' || coalesce(doc.description, ''), 'B')
        || catalog_tsvector(left(coalesce(ops, ''), 500000), 'C');
    RETURN NEW;
END
$$;

CREATE TRIGGER projects_search_vector
    BEFORE INSERT OR UPDATE OF name, title, description, tags, published_document_id ON projects
    FOR EACH ROW EXECUTE FUNCTION projects_search_vector();

UPDATE projects SET name = name;

CREATE FUNCTION catalog_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catalog_changed', '');
    RETURN NULL;
END
$$;

-- Not on lease claims and releases: only on what a reader of the catalog can see.
CREATE TRIGGER catalog_changed
    AFTER INSERT OR DELETE OR UPDATE OF name, title, description, tags, swagger_url, status,
        last_checked_at, last_changed_at, published_document_id, current_document_id
    ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
