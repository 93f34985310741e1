-- A collection that finds nothing new changes when the project was last checked, and
-- nothing else a reader sees: it no longer empties every replica's response cache.
-- (With thousands of APIs checked hourly that happened every second or two.) Row by
-- row, so that the condition can compare old and new; PostgreSQL sends one
-- notification per transaction however many rows fire it.
DROP TRIGGER catalog_changed ON projects;

CREATE TRIGGER catalog_changed_rows
    AFTER INSERT OR DELETE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();

CREATE TRIGGER catalog_changed_columns
    AFTER UPDATE ON projects
    FOR EACH ROW
    WHEN ((OLD.name, OLD.title, OLD.description, OLD.tags, OLD.swagger_url, OLD.status,
           OLD.last_changed_at, OLD.published_document_id, OLD.current_document_id,
           OLD.owner, OLD.contact)
          IS DISTINCT FROM
          (NEW.name, NEW.title, NEW.description, NEW.tags, NEW.swagger_url, NEW.status,
           NEW.last_changed_at, NEW.published_document_id, NEW.current_document_id,
           NEW.owner, NEW.contact))
    EXECUTE FUNCTION catalog_changed();
