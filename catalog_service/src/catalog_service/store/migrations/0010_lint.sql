-- The API design rules report of each version (lint/): the ruleset's name, the score
-- and the findings; NULL for versions stored before linting, or when the linter
-- failed on the document. The published version's score is kept on the project too,
-- so that a page of the catalog filtered by score is chosen among projects alone.
ALTER TABLE documents ADD COLUMN lint jsonb;
ALTER TABLE documents ADD COLUMN lint_score smallint;
ALTER TABLE projects ADD COLUMN lint_score smallint;

CREATE INDEX projects_by_lint_score ON projects (lint_score, name) WHERE lint_score IS NOT NULL;

-- Readers see the score: a change of it empties the response caches like the others.
DROP TRIGGER catalog_changed_columns ON projects;
CREATE TRIGGER catalog_changed_columns
    AFTER UPDATE ON projects
    FOR EACH ROW
    WHEN ((OLD.name, OLD.title, OLD.description, OLD.tags, OLD.swagger_url, OLD.status,
           OLD.last_changed_at, OLD.published_document_id, OLD.current_document_id,
           OLD.owner, OLD.contact, OLD.lint_score)
          IS DISTINCT FROM
          (NEW.name, NEW.title, NEW.description, NEW.tags, NEW.swagger_url, NEW.status,
           NEW.last_changed_at, NEW.published_document_id, NEW.current_document_id,
           NEW.owner, NEW.contact, NEW.lint_score))
    EXECUTE FUNCTION catalog_changed();
