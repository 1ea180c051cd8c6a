-- Followers as the callback sees them; later issues add tags, quiz state and erasure.
CREATE TABLE followers (
    openid            text        PRIMARY KEY,
    subscribed        boolean     NOT NULL,
    subscribed_at     timestamptz,
    unsubscribed_at   timestamptz,
    -- QR scene of the last subscribe, without WeChat's `qrscene_` prefix.
    subscribe_scene   text,
    first_seen_at     timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL,
    -- CreateTime of the newest push that changed `subscribed`, so a late retry cannot undo a newer state.
    state_changed_at  timestamptz
);

-- One row per push WeChat delivered, whatever its kind. `dedupe_key` is how retries are recognised:
-- `m:<MsgId>` for messages, `e:<FromUserName>:<CreateTime>:<Event>` for events.
CREATE TABLE events (
    id           bigserial   PRIMARY KEY,
    dedupe_key   text        NOT NULL UNIQUE,
    openid       text        NOT NULL,
    kind         text        NOT NULL,
    event_key    text,
    -- WeChat's CreateTime: when the follower acted.
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    payload      jsonb       NOT NULL,
    -- The passive reply sent (plaintext XML), or empty for `success`; retries get it again.
    reply        text        NOT NULL DEFAULT ''
);

CREATE INDEX events_openid_occurred_at ON events (openid, occurred_at DESC);
CREATE INDEX events_kind_occurred_at ON events (kind, occurred_at DESC);
