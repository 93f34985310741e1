-- Each catalog_changed notification names the project that changed (its old and its
-- new name when renamed): an in-memory index can read those rows again instead of
-- the whole catalog (indexes/catalog.py). A notification without a name (a
-- statement-level trigger) still means "something changed". PostgreSQL sends one
-- notification per distinct name per transaction.
CREATE OR REPLACE FUNCTION catalog_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('catalog_changed', OLD.name);
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.name IS DISTINCT FROM OLD.name) THEN
            PERFORM pg_notify('catalog_changed', NEW.name);
        END IF;
    ELSE
        PERFORM pg_notify('catalog_changed', '');
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER catalog_changed_rows ON projects;
CREATE TRIGGER catalog_changed_rows
    AFTER INSERT OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION catalog_changed();
