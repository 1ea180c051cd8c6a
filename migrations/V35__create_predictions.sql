-- Issue 21: predictions trained on the account's own history, in process (no data leaves the
-- server). A run trains and evaluates one model; its figures stay as the model's history, and a
-- run the operator may trust writes every subscribed follower's score.
CREATE TABLE prediction_runs (
    id            bigserial   PRIMARY KEY,
    account_id    bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- One of the expression language's score models (`purchase_7d`).
    model         text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    -- 'running', 'done' or 'failed'.
    status        text        NOT NULL DEFAULT 'running',
    -- Who asked: a username, or 'system' for the daily run.
    requested_by  text        NOT NULL,
    -- Features as of this instant for the held-out window (labels from the 7 days after it).
    evaluated_at  timestamptz,
    -- 'trusted', 'not_better_than_baseline' or 'too_little_history'; only a trusted run scores.
    verdict       text,
    -- The verdict in the operator's words, with what to do.
    verdict_zh    text,
    -- Model and baseline figures on the held-out window, the reliability chart, sizes.
    figures       jsonb       NOT NULL DEFAULT '{}',
    -- The fitted model, to score with until the next run.
    fitted        jsonb,
    scored        integer     NOT NULL DEFAULT 0,
    error         text
);
CREATE INDEX prediction_runs_latest ON prediction_runs (account_id, model, id DESC);

-- Each follower's latest score per model. Erased with the follower (PIPL): see store::followers.
CREATE TABLE follower_scores (
    account_id  bigint      NOT NULL,
    model       text        NOT NULL,
    openid      text        NOT NULL,
    score       real        NOT NULL,
    run_id      bigint      NOT NULL,
    scored_at   timestamptz NOT NULL,
    PRIMARY KEY (account_id, model, openid)
);
-- Threshold tags and segments ask "who scores at least p" without reading every row.
CREATE INDEX follower_scores_by_score ON follower_scores (account_id, model, score);
