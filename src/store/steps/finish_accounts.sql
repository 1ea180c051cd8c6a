-- The contract half of V22 (several accounts): the single-account keys go, the per-account keys
-- take their place. The previous release names the old keys in ON CONFLICT, so this runs only
-- once none of its instances is left (`tagcast migrate --finish`; a new install runs it at once).
-- Every statement changes catalog entries only: the indexes it promotes already exist.
ALTER TABLE followers DROP CONSTRAINT IF EXISTS followers_pkey;
ALTER TABLE followers ADD CONSTRAINT followers_pkey PRIMARY KEY USING INDEX followers_account_openid;

ALTER TABLE tags DROP CONSTRAINT IF EXISTS tags_path_key;
ALTER TABLE tags DROP CONSTRAINT IF EXISTS tags_wechat_tag_id_key;

ALTER TABLE quiz_sessions DROP CONSTRAINT IF EXISTS quiz_sessions_quiz_id_fkey;
ALTER TABLE quiz_sessions DROP CONSTRAINT IF EXISTS quiz_sessions_pkey;
ALTER TABLE quiz_sessions ADD CONSTRAINT quiz_sessions_pkey PRIMARY KEY USING INDEX quiz_sessions_account_openid;
ALTER TABLE quizzes DROP CONSTRAINT IF EXISTS quizzes_pkey;
ALTER TABLE quizzes ADD CONSTRAINT quizzes_pkey PRIMARY KEY USING INDEX quizzes_account_id_key;

ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_pkey;
ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_account_id_key;

ALTER TABLE follower_wechat_tags DROP CONSTRAINT IF EXISTS follower_wechat_tags_tag_id_fkey;
ALTER TABLE follower_wechat_tags DROP CONSTRAINT IF EXISTS follower_wechat_tags_pkey;
ALTER TABLE follower_wechat_tags ADD CONSTRAINT follower_wechat_tags_pkey
    PRIMARY KEY USING INDEX follower_wechat_tags_account_key;
ALTER TABLE wechat_tags DROP CONSTRAINT IF EXISTS wechat_tags_pkey;
ALTER TABLE wechat_tags ADD CONSTRAINT wechat_tags_pkey PRIMARY KEY USING INDEX wechat_tags_account_id_key;
-- NOT VALID: the rows already satisfy it (they were written under the single-account key), and
-- checking them would hold the table for a scan.
ALTER TABLE follower_wechat_tags ADD CONSTRAINT follower_wechat_tags_account_tag_fkey
    FOREIGN KEY (account_id, tag_id) REFERENCES wechat_tags (account_id, id) ON DELETE CASCADE NOT VALID;

ALTER TABLE follower_mass_receipts DROP CONSTRAINT IF EXISTS follower_mass_receipts_pkey;
ALTER TABLE follower_mass_receipts ADD CONSTRAINT follower_mass_receipts_pkey
    PRIMARY KEY USING INDEX follower_mass_receipts_account_key;
ALTER TABLE mass_job_results DROP CONSTRAINT IF EXISTS mass_job_results_pkey;
ALTER TABLE mass_job_results ADD CONSTRAINT mass_job_results_pkey PRIMARY KEY USING INDEX mass_job_results_account_msg_id;
ALTER TABLE article_reads DROP CONSTRAINT IF EXISTS article_reads_pkey;
ALTER TABLE article_reads ADD CONSTRAINT article_reads_pkey PRIMARY KEY USING INDEX article_reads_account_msg_data_id;
ALTER TABLE article_read_fetches DROP CONSTRAINT IF EXISTS article_read_fetches_pkey;
ALTER TABLE article_read_fetches ADD CONSTRAINT article_read_fetches_pkey
    PRIMARY KEY USING INDEX article_read_fetches_account_key;

INSERT INTO schema_steps (name) VALUES ('accounts') ON CONFLICT DO NOTHING;
