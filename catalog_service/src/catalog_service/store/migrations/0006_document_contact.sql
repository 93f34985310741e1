-- Who to ask about an API, as its document says (info.contact), kept beside the
-- document so that a page of the catalog never reads whole documents to show it.
ALTER TABLE documents ADD COLUMN contact jsonb;

-- The documents published before: their contact, read once from the stored JSON. A
-- document whose JSON PostgreSQL cannot hold as jsonb simply shows none.
DO $$
DECLARE
    published record;
BEGIN
    FOR published IN
        SELECT d.id, d.content_json FROM documents d JOIN projects p ON p.published_document_id = d.id
    LOOP
        BEGIN
            UPDATE documents
               SET contact = nullif(jsonb_strip_nulls(jsonb_build_object(
                       'name', c->'name', 'email', c->'email',
                       'url', CASE WHEN c->>'url' ~* '^https?://' THEN c->'url' END)), '{}')
              FROM (SELECT published.content_json::jsonb->'info'->'contact' AS c) AS info
             WHERE documents.id = published.id AND jsonb_typeof(info.c) = 'object';
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;
END
$$;
