-- Issue 21, point 4: intent tags learned from what followers write. The operator names intents
-- (each gives one tag), labels messages in the 待标注 queue, and a classifier trained on those
-- labels tags a message's sender when its confidence reaches the intent's threshold.
CREATE TABLE intents (
    id          bigserial   PRIMARY KEY,
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    -- The tag a confident prediction gives; deleting the tag deletes the intent.
    tag_id      bigint      NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    -- Confidence the model needs before it tags (0 < t <= 1).
    threshold   real        NOT NULL DEFAULT 0.8 CHECK (threshold > 0 AND threshold <= 1),
    -- Words whose messages seed weak examples before anyone has labelled.
    keywords    text[]      NOT NULL DEFAULT '{}',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

-- Labelled messages: one label per distinct (normalised) text per account. `intent` NULL is 其他.
-- `openid` is the sender, so erasing a follower erases what they wrote (PIPL).
CREATE TABLE intent_examples (
    id          bigserial   PRIMARY KEY,
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    text        text        NOT NULL,
    normalized  text        NOT NULL,
    intent      text,
    -- 'operator' (labelled by a person) or 'keyword' (seeded from an intent's keywords).
    source      text        NOT NULL CHECK (source IN ('operator', 'keyword')),
    openid      text,
    labelled_by text        NOT NULL,
    labelled_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, normalized)
);
CREATE INDEX intent_examples_sender ON intent_examples (account_id, openid) WHERE openid IS NOT NULL;

-- Messages an operator passed over in the queue (跳过): not asked again.
CREATE TABLE intent_skipped (
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    normalized  text        NOT NULL,
    openid      text,
    PRIMARY KEY (account_id, normalized)
);

-- The account's current classifier and its cross-validated figures, one row per account.
CREATE TABLE intent_models (
    account_id  bigint      PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- domain::intent::Classifier as JSON; NULL while too few examples to train.
    model       jsonb,
    -- domain::intent::CvReport as JSON, or the reason there is none.
    figures     jsonb       NOT NULL DEFAULT '{}',
    examples    integer     NOT NULL DEFAULT 0,
    trained_by  text        NOT NULL,
    trained_at  timestamptz NOT NULL DEFAULT now()
);
