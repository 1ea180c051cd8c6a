-- What WeChat holds, as last imported by `tagcast sync`: its tags and who carries them.
CREATE TABLE wechat_tags (
    id          bigint      PRIMARY KEY,
    name        text        NOT NULL,
    -- Followers carrying it, as WeChat counted them at import.
    fan_count   bigint      NOT NULL DEFAULT 0,
    synced_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE follower_wechat_tags (
    openid      text        NOT NULL,
    tag_id      bigint      NOT NULL REFERENCES wechat_tags (id) ON DELETE CASCADE,
    PRIMARY KEY (openid, tag_id)
);
CREATE INDEX follower_wechat_tags_tag_id ON follower_wechat_tags (tag_id);

ALTER TABLE followers ADD COLUMN last_synced_at timestamptz;

-- Where an import stands, so a killed `tagcast sync` resumes instead of starting over.
CREATE TABLE sync_runs (
    id            bigserial   PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    -- 'followers', then 'tags', then 'done'.
    phase         text        NOT NULL DEFAULT 'followers',
    next_openid   text        NOT NULL DEFAULT '',
    -- During the tags phase: the tag being paged through, and the ones left after it.
    current_tag   bigint,
    pending_tags  bigint[]    NOT NULL DEFAULT '{}',
    total         bigint,
    imported      bigint      NOT NULL DEFAULT 0
);
