-- How many operations a document has, counted once when it is stored: every page of
-- the catalog showed it by counting the operations of each of its rows again.
ALTER TABLE documents ADD COLUMN operations_count integer;
UPDATE documents d SET operations_count = (SELECT count(*) FROM operations o WHERE o.document_id = d.id);
ALTER TABLE documents ALTER COLUMN operations_count SET DEFAULT 0;
UPDATE documents SET operations_count = 0 WHERE operations_count IS NULL;
ALTER TABLE documents ALTER COLUMN operations_count SET NOT NULL;
