-- The account's access token, shared by every tagcast process: WeChat keeps one valid token per
-- account, so processes must not each fetch their own. A refresh holds this row's lock.
CREATE TABLE access_tokens (
    appid        text        PRIMARY KEY,
    token        text,
    expires_at   timestamptz,
    fetched_at   timestamptz,
    -- How many times a process fetched a token (observability; expected to be low).
    fetch_count  bigint      NOT NULL DEFAULT 0
);
