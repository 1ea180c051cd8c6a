-- Campaigns (issue 6, CONTRACT.md §4): a message, an audience, optional A/B variants, and the
-- WeChat jobs that carried it.
CREATE TABLE campaigns (
    id                 bigserial   PRIMARY KEY,
    name               text        NOT NULL,
    -- {"tag": path} | {"segment": id} | {"all": true}, as posted.
    audience           jsonb       NOT NULL,
    -- Variant 0's message (the control when variants are given).
    message            jsonb       NOT NULL,
    status             text        NOT NULL CHECK (status IN
                           ('draft', 'pending_approval', 'approved', 'scheduled', 'sending', 'sent', 'failed', 'cancelled')),
    send_at            timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- When a send was asked for (by the application's clock) and by whom.
    send_requested_at  timestamptz,
    send_requested_by  text,
    -- When its first WeChat job was accepted: the start of the attribution windows.
    delivered_at       timestamptz,
    last_error         text
);
CREATE INDEX campaigns_scheduled ON campaigns (send_at) WHERE status = 'scheduled';

-- A/B variants beyond the control (variant 0 is `campaigns.message`).
CREATE TABLE campaign_variants (
    campaign_id  bigint  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    idx          integer NOT NULL CHECK (idx > 0),
    name         text    NOT NULL,
    message      jsonb   NOT NULL,
    PRIMARY KEY (campaign_id, idx)
);

-- Who approved a campaign that touches a sensitive tag (never its creator).
CREATE TABLE campaign_approvals (
    campaign_id  bigint      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    approved_by  text        NOT NULL,
    approved_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, approved_by)
);

-- Each tag a send reached, at the application's clock: TAGCAST_MONTHLY_TAG_CAP counts these.
CREATE TABLE campaign_tag_sends (
    campaign_id  bigint      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    tag_id       bigint      NOT NULL,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, tag_id)
);
CREATE INDEX campaign_tag_sends_tag ON campaign_tag_sends (tag_id, sent_at);

-- One WeChat call per row, planned before the first goes out. `clientmsgid` is derived from
-- campaign and seq, so a call repeated after a crash is answered 45065 with the first job's
-- msg_id instead of reaching anyone twice.
CREATE TABLE campaign_chunks (
    campaign_id     bigint      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    seq             integer     NOT NULL,
    variant         integer     NOT NULL DEFAULT 0,
    -- 'all' (sendall is_to_all), 'tag' (sendall by a mirrored tag), 'openids' (mass/send),
    -- 'temp_tag' (subscription account: a temporary WeChat tag of `openids`, then sendall by it).
    kind            text        NOT NULL CHECK (kind IN ('all', 'tag', 'openids', 'temp_tag')),
    wechat_tag_id   bigint,
    openids         text[]      NOT NULL DEFAULT '{}',
    clientmsgid     text        NOT NULL UNIQUE,
    -- 'pending', 'submitted' (WeChat accepted it), 'failed' (refused for good), 'skipped' (cancelled).
    state           text        NOT NULL DEFAULT 'pending',
    -- temp_tag only: members added so far (batchtagging is idempotent, this saves repeats).
    tagged          integer     NOT NULL DEFAULT 0,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    msg_id          bigint,
    msg_data_id     bigint,
    submitted_at    timestamptz,
    PRIMARY KEY (campaign_id, seq)
);
CREATE INDEX campaign_chunks_msg_id ON campaign_chunks (msg_id) WHERE msg_id IS NOT NULL;

-- MASSSENDJOBFINISH as received, by msg_id. Kept apart from the calls because WeChat may push
-- the result before the sender has recorded the msg_id it was answered.
CREATE TABLE mass_job_results (
    msg_id        bigint      PRIMARY KEY,
    status        text        NOT NULL,
    total_count   bigint      NOT NULL,
    filter_count  bigint      NOT NULL,
    sent_count    bigint      NOT NULL,
    error_count   bigint      NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);

-- Who a campaign was aimed at, and with which variant: the base of A/B results and attribution.
CREATE TABLE campaign_recipients (
    campaign_id  bigint  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    openid       text    NOT NULL,
    variant      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, openid)
);
CREATE INDEX campaign_recipients_openid ON campaign_recipients (openid);

-- Mass messages each follower was sent per Beijing calendar month (service accounts: WeChat
-- delivers 4 and silently filters the rest).
CREATE TABLE follower_mass_receipts (
    openid  text    NOT NULL,
    month   date    NOT NULL,
    count   integer NOT NULL,
    PRIMARY KEY (openid, month)
);
