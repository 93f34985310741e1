-- What changed between consecutive valid versions of each API.

CREATE TABLE changes (
    id                bigserial PRIMARY KEY,
    project_id        bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    from_document_id  bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    to_document_id    bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collected_at      timestamptz NOT NULL DEFAULT now(),
    breaking          boolean NOT NULL,
    changes           jsonb NOT NULL
);
CREATE INDEX changes_by_project ON changes (project_id, collected_at DESC, id DESC);
CREATE INDEX changes_by_time ON changes (collected_at DESC, id DESC);
CREATE INDEX changes_breaking_by_time ON changes (collected_at DESC, id DESC) WHERE breaking;
