-- The collector: every distinct document per project, every attempt, the operations
-- of each document, and a work queue in the projects table that replicas share.

CREATE TABLE documents (
    id            bigserial PRIMARY KEY,
    project_id    bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    sha256        bytea NOT NULL,
    raw           bytea NOT NULL,
    -- The parsed document as JSON in source key order; NULL when it did not parse.
    content_json  text,
    spec_format   text CHECK (spec_format IN ('swagger-2.0', 'openapi-3.0', 'openapi-3.1')),
    version       text,
    title         text,
    description   text,
    valid         boolean NOT NULL,
    errors        jsonb NOT NULL DEFAULT '[]',
    collected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, sha256)
);
-- Identical bytes anywhere in the catalog are parsed and validated once.
CREATE INDEX documents_by_sha256 ON documents (sha256);

CREATE TABLE operations (
    document_id   bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    method        text NOT NULL,
    path          text NOT NULL,
    operation_id  text,
    summary       text,
    tags          text[] NOT NULL DEFAULT '{}',
    deprecated    boolean NOT NULL DEFAULT false
);
CREATE INDEX operations_by_document ON operations (document_id);

CREATE TABLE collections (
    id            bigserial PRIMARY KEY,
    project_id    bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    trigger       text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    http_status   integer,
    outcome       text NOT NULL
                  CHECK (outcome IN ('changed', 'unchanged', 'invalid', 'unreachable', 'refused')),
    error         text,
    document_id   bigint REFERENCES documents(id) ON DELETE SET NULL,
    replica       text NOT NULL
);
CREATE INDEX collections_by_project ON collections (project_id, started_at DESC, id DESC);

ALTER TABLE projects
    -- The queue: a project is due at next_check_at; a replica holding a lease sets it
    -- to 'infinity' until it is done, and a lease past its expiry is free to take.
    ADD COLUMN next_check_at         timestamptz NOT NULL DEFAULT now(),
    -- Why the next collection happens ('registration', 'refresh', ...); NULL: the schedule.
    ADD COLUMN requested_trigger     text DEFAULT 'registration',
    ADD COLUMN lease_owner           text,
    ADD COLUMN lease_expires_at      timestamptz,
    ADD COLUMN consecutive_failures  integer NOT NULL DEFAULT 0,
    -- Conditional GET.
    ADD COLUMN http_etag             text,
    ADD COLUMN http_last_modified    text,
    -- The last document downloaded, and the last valid one (what is published).
    ADD COLUMN current_document_id   bigint REFERENCES documents(id) ON DELETE SET NULL,
    ADD COLUMN published_document_id bigint REFERENCES documents(id) ON DELETE SET NULL;

CREATE INDEX projects_due ON projects (next_check_at);
CREATE INDEX projects_lease_expiry ON projects (lease_expires_at) WHERE lease_owner IS NOT NULL;
