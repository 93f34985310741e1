-- Registered projects and the bearer tokens that may change them.

CREATE TABLE tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash  bytea NOT NULL UNIQUE,
    admin       boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    swagger_url      text NOT NULL,
    title            text,
    description      text,
    tags             text[] NOT NULL DEFAULT '{}',
    contact          jsonb,
    owner            text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'valid', 'invalid', 'unreachable')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_checked_at  timestamptz,
    last_changed_at  timestamptz
);
