-- Local tags: the source of truth. Mirrored ones also exist on WeChat (wechat_tag_id once created).
CREATE TABLE tags (
    id             bigserial   PRIMARY KEY,
    path           text        NOT NULL UNIQUE,
    description    text        NOT NULL DEFAULT '',
    sensitive      boolean     NOT NULL DEFAULT false,
    -- Dynamic tags (issue 5): kept true by the engine.
    when_expr      text,
    -- false: local-only, never sent to WeChat (audiences still use it).
    mirrored       boolean     NOT NULL DEFAULT true,
    wechat_tag_id  bigint      UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL,
    last_used_at   timestamptz
);

-- Who carries which tag, and why.
CREATE TABLE follower_tags (
    openid     text        NOT NULL,
    tag_id     bigint      NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    tagged_at  timestamptz NOT NULL DEFAULT now(),
    -- `rule:<id>`, `quiz:<id>`, `api`, `playbook`, ...
    source     text        NOT NULL,
    PRIMARY KEY (openid, tag_id)
);
CREATE INDEX follower_tags_tag_id ON follower_tags (tag_id);

-- What WeChat must learn: the last word per (follower, tag). A change overwrites the pending one
-- (add-then-remove ends as remove), `seq` tells a worker whether the row changed while it was
-- sending, and a claim keeps two workers from sending the same follower's tag at once.
CREATE SEQUENCE tag_outbox_seq;
CREATE TABLE tag_outbox (
    openid         text        NOT NULL,
    tag_id         bigint      NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    add            boolean     NOT NULL,
    seq            bigint      NOT NULL DEFAULT nextval('tag_outbox_seq'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    run_at         timestamptz NOT NULL DEFAULT now(),
    claimed_until  timestamptz,
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text,
    -- 'pending', or 'dead' after the last attempt (kept for an operator to see).
    state          text        NOT NULL DEFAULT 'pending',
    PRIMARY KEY (openid, tag_id)
);
CREATE INDEX tag_outbox_due ON tag_outbox (run_at) WHERE state = 'pending';

CREATE TABLE rules (
    id          bigserial   PRIMARY KEY,
    trigger     text        NOT NULL,
    key         text        NOT NULL,
    add_tags    text[]      NOT NULL DEFAULT '{}',
    remove_tags text[]      NOT NULL DEFAULT '{}',
    reply       text,
    start_quiz  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL
);
CREATE INDEX rules_trigger_key ON rules (trigger, key);

CREATE TABLE quizzes (
    id          text        PRIMARY KEY,
    spec        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A follower in the middle of a quiz; survives restarts, expires when abandoned.
CREATE TABLE quiz_sessions (
    openid      text        PRIMARY KEY,
    quiz_id     text        NOT NULL REFERENCES quizzes (id) ON DELETE CASCADE,
    progress    jsonb       NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Finished quizzes, for the follower page.
CREATE TABLE quiz_answers (
    id          bigserial   PRIMARY KEY,
    openid      text        NOT NULL,
    quiz_id     text        NOT NULL,
    tags        text[]      NOT NULL,
    scores      jsonb       NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quiz_answers_openid ON quiz_answers (openid);

-- Bumped on every change to rules, quizzes or tags, so each process can tell its in-memory copy
-- is stale with one cheap read.
CREATE TABLE config_version (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    version  bigint  NOT NULL
);
INSERT INTO config_version VALUES (true, 1);

-- Background work that is not a tag change: deleting a tag on WeChat, and what later issues add.
CREATE TABLE jobs (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL,
    payload     jsonb       NOT NULL,
    -- 'pending', 'done', or 'dead' after the last attempt (kept, never deleted).
    state       text        NOT NULL DEFAULT 'pending',
    attempts    integer     NOT NULL DEFAULT 0,
    run_at      timestamptz NOT NULL DEFAULT now(),
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'pending';
