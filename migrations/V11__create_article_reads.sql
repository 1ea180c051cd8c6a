-- Readers of campaigns' mpnews articles as datacube's getarticletotaldetail reports them
-- (wechat-api.md §18), by msg_data_id: cumulative over the days since publishing, so the
-- latest figure replaces the one before. A campaign's read rate is their sum over SentCount.
CREATE TABLE article_reads (
    msg_data_id  bigint      PRIMARY KEY,
    read_user    bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Which publishing days were asked about on which day: each at most once a day.
CREATE TABLE article_read_fetches (
    publish_day  date NOT NULL,
    fetched_on   date NOT NULL,
    PRIMARY KEY (publish_day, fetched_on)
);
