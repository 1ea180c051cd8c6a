-- Issue 18: the account's WeChat drafts (草稿箱), as `draft/batchget` last listed them, so the
-- campaign composer offers them to pick instead of a typed media_id. Refreshed by `tagcast sync`
-- and the `refresh_drafts` job; a draft gone from WeChat is removed at the next refresh.
CREATE TABLE drafts (
    account_id    bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    media_id      text        NOT NULL,
    title         text        NOT NULL,
    author        text        NOT NULL,
    -- The first article's cover URL.
    cover_url     text        NOT NULL,
    article_count integer     NOT NULL CHECK (article_count BETWEEN 1 AND 8),
    -- Every article's title, in order (article 1 is `title`).
    article_titles text[]     NOT NULL,
    -- WeChat's update_time of the draft.
    updated_at    timestamptz NOT NULL,
    refreshed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, media_id)
);
CREATE INDEX drafts_account_updated ON drafts (account_id, updated_at DESC);

-- Readers per article of a multi-article send (datacube `msgid` `<msg_data_id>_<idx>`). The
-- previous release keeps writing article 1 to `article_reads`, which this one still reads for a
-- campaign's read rate; this table adds the other articles.
CREATE TABLE article_index_reads (
    account_id   bigint      NOT NULL DEFAULT 1,
    msg_data_id  bigint      NOT NULL,
    article_idx  integer     NOT NULL CHECK (article_idx >= 1),
    read_user    bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, msg_data_id, article_idx)
);

-- Which article of a multi-article send a short link sits in; NULL: not said (counted with the
-- campaign only). The previous release does not know the column and leaves it NULL.
ALTER TABLE campaign_links ADD COLUMN article_idx integer CHECK (article_idx BETWEEN 1 AND 8);
