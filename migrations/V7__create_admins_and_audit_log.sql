-- The people on the admin page and behind HTTP Basic on the JSON API (CONTRACT.md §4 `POST /admins`).
CREATE TABLE admins (
    id             bigserial   PRIMARY KEY,
    username       text        NOT NULL UNIQUE,
    -- argon2id, PHC string format.
    password_hash  text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('admin', 'approver', 'operator')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL,
    -- A disabled account keeps its name in the audit log but cannot sign in.
    disabled_at    timestamptz
);

-- Who did what and when: campaigns (create, approve, send, cancel), erasures, admin changes.
-- Append-only; the admin page pages through it newest first.
CREATE TABLE audit_log (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    object_kind  text        NOT NULL,
    object_id    text        NOT NULL,
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
