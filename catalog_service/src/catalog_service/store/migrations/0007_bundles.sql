-- Documents split over many files: the version stored is the bundle of them all. What
-- each file was when it was bundled (URL, SHA-256, ETag, Last-Modified) is kept with
-- it, so an unchanged bundle is recognised with one conditional GET per file.
ALTER TABLE documents ADD COLUMN sources jsonb;
