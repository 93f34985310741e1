-- Webhooks: who wants to hear of what, and the outbox of what is to be told.
--
-- A subscription is for one project, or (project_id NULL, made by an admin) for every
-- project. Its secret signs each delivery (Standard Webhooks); it is shown once, when
-- the subscription is made, and kept here only to sign.
CREATE TABLE webhooks (
    id          text PRIMARY KEY,
    project_id  bigint REFERENCES projects (id) ON DELETE CASCADE,
    url         text NOT NULL,
    events      text[] NOT NULL,
    secret      text NOT NULL,
    -- The name of the token that made it.
    owner       text NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_by_project ON webhooks (project_id);

-- The outbox: one row per event and subscription, written in the transaction that
-- records what the event tells. Its id is the delivery's webhook-id, the same on every
-- attempt. A replica leases a row while it sends it (as projects are leased while they
-- are collected); a lease whose holder stops or dies frees it for another replica.
CREATE TABLE webhook_deliveries (
    id               text PRIMARY KEY,
    webhook_id       text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    type             text NOT NULL,
    -- The exact bytes signed and sent, the same on every attempt.
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- Retried with back-off until then, then failed.
    give_up_at       timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_http_status integer,
    last_error       text,
    delivered_at     timestamptz,
    lease_owner      text,
    lease_expires_at timestamptz
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
