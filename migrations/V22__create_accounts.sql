-- Several Official Accounts in one deployment (issue 17). Every row that belongs to an account says
-- which; the existing rows are the first account's (id 1), and so are the rows the previous release
-- writes during a rolling upgrade: it knows nothing of accounts, and every new column defaults to 1.
--
-- Expand now, contract later: the single-account unique keys (followers.openid, tags.path, ...)
-- stay until `tagcast migrate --finish` (run once no instance of the previous release is left; a
-- new install does it at once), because the previous release names them in `ON CONFLICT`. Until
-- then a second account cannot be created. The composite keys the new release names are built
-- here; on a 1M-follower install this holds writes to `followers` for about a second (measured in
-- BENCHMARKS.md), which WeChat's 5 s answer window absorbs.

CREATE TABLE accounts (
    id                bigserial   PRIMARY KEY,
    -- The account's handle in URLs (`/wechat/{name}`), the API and `--account`.
    name              text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    display_name      text        NOT NULL,
    kind              text        NOT NULL DEFAULT 'service' CHECK (kind IN ('service', 'subscription')),
    appid             text        UNIQUE,
    -- AES-256-GCM under TAGCAST_SECRET_KEY (src/app/accounts/sealing.rs): nonce || ciphertext.
    -- NULL: not set, or (the first account) given by environment variables, never stored.
    app_secret_sealed bytea,
    token_sealed      bytea,
    aes_key_sealed    bytea,
    -- Fingerprint of the key that sealed this row's secrets, so a rotation knows what to reseal.
    sealed_with       text,
    message_mode      text        NOT NULL DEFAULT 'plain' CHECK (message_mode IN ('plain', 'compat', 'safe')),
    -- NULL: https://api.weixin.qq.com.
    api_base          text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text        NOT NULL DEFAULT 'system'
);
INSERT INTO accounts (id, name, display_name) VALUES (1, 'main', '主公众号');
SELECT setval('accounts_id_seq', 1);

-- Which steps of an expand/contract change have been finished (`tagcast migrate --finish`).
CREATE TABLE schema_steps (
    name     text        PRIMARY KEY,
    done_at  timestamptz NOT NULL DEFAULT now()
);

-- Roles per account. `admins.role` stays: `admin` there is the deployment admin, who manages
-- accounts and users and holds every account; the others hold the accounts listed here.
CREATE TABLE admin_roles (
    admin_id    bigint NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        text   NOT NULL CHECK (role IN ('admin', 'approver', 'operator')),
    PRIMARY KEY (admin_id, account_id)
);
INSERT INTO admin_roles (admin_id, account_id, role) SELECT id, 1, role FROM admins;

-- The account a signed-in user is working on (the console's switcher).
ALTER TABLE admin_sessions ADD COLUMN account_id bigint NOT NULL DEFAULT 1;

-- Rows owned by an account. No foreign key: the column is added without rewriting or scanning the
-- table (a constant default), and accounts are never deleted, only emptied.
ALTER TABLE followers ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
-- Same person in the deployment's other accounts, when WeChat returns it (Open Platform binding).
ALTER TABLE followers ADD COLUMN unionid text;
ALTER TABLE events ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE tags ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE rules ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE quizzes ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE quiz_sessions ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE quiz_answers ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE segments ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE orders ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE campaigns ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE tag_outbox ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE wechat_tags ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE follower_wechat_tags ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE follower_mass_receipts ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE mass_job_results ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE article_reads ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE article_read_fetches ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
ALTER TABLE sync_runs ADD COLUMN account_id bigint NOT NULL DEFAULT 1;
-- NULL for deployment-wide actions (accounts, users).
ALTER TABLE audit_log ADD COLUMN account_id bigint DEFAULT 1;

-- The keys the new release names in ON CONFLICT and its lookups. `events.dedupe_key` keeps its
-- global unique index: the first account's keys are unchanged (so an old and a new instance
-- recognise the same retry) and other accounts' keys start with `<account id>/`.
CREATE UNIQUE INDEX followers_account_openid ON followers (account_id, openid);
CREATE INDEX followers_unionid ON followers (unionid) WHERE unionid IS NOT NULL;
CREATE UNIQUE INDEX tags_account_path ON tags (account_id, path);
CREATE UNIQUE INDEX tags_account_wechat_tag_id ON tags (account_id, wechat_tag_id);
CREATE UNIQUE INDEX quizzes_account_id_key ON quizzes (account_id, id);
CREATE UNIQUE INDEX quiz_sessions_account_openid ON quiz_sessions (account_id, openid);
ALTER TABLE quiz_sessions ADD CONSTRAINT quiz_sessions_account_quiz_fkey
    FOREIGN KEY (account_id, quiz_id) REFERENCES quizzes (account_id, id) ON DELETE CASCADE;
CREATE UNIQUE INDEX orders_account_id_key ON orders (account_id, id);
CREATE UNIQUE INDEX wechat_tags_account_id_key ON wechat_tags (account_id, id);
CREATE UNIQUE INDEX follower_wechat_tags_account_key ON follower_wechat_tags (account_id, openid, tag_id);
CREATE UNIQUE INDEX follower_mass_receipts_account_key ON follower_mass_receipts (account_id, openid, month);
CREATE UNIQUE INDEX mass_job_results_account_msg_id ON mass_job_results (account_id, msg_id);
CREATE UNIQUE INDEX article_reads_account_msg_data_id ON article_reads (account_id, msg_data_id);
CREATE UNIQUE INDEX article_read_fetches_account_key ON article_read_fetches (account_id, publish_day, fetched_on);
CREATE INDEX rules_account_trigger_key ON rules (account_id, trigger, key);
CREATE INDEX campaigns_account_created ON campaigns (account_id, created_at DESC);
CREATE INDEX segments_account ON segments (account_id);
CREATE INDEX audit_log_account_at ON audit_log (account_id, at DESC);

-- Per-account singletons. The previous release's single rows stay for it until the contract step.
CREATE TABLE account_mass_pace (
    account_id  bigint      PRIMARY KEY REFERENCES accounts (id),
    next_at     timestamptz NOT NULL
);
INSERT INTO account_mass_pace (account_id, next_at) SELECT 1, next_at FROM mass_send_pace;
CREATE TABLE account_audience_epochs (
    account_id  bigint PRIMARY KEY REFERENCES accounts (id),
    epoch       bigint NOT NULL DEFAULT 0
);
INSERT INTO account_audience_epochs (account_id, epoch) SELECT 1, epoch FROM audience_epoch;

-- A change of a user's roles on any account ends their sessions, as a change of `admins.role`
-- does (V19): a page open under the old role must not keep acting with it.
CREATE FUNCTION end_sessions_of_changed_roles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM admin_sessions WHERE admin_id = coalesce(NEW.admin_id, OLD.admin_id);
    IF TG_OP = 'UPDATE' AND OLD.admin_id IS DISTINCT FROM NEW.admin_id THEN
        DELETE FROM admin_sessions WHERE admin_id = OLD.admin_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER admin_roles_end_their_sessions
    AFTER INSERT OR UPDATE OR DELETE ON admin_roles
    FOR EACH ROW
    EXECUTE FUNCTION end_sessions_of_changed_roles();
