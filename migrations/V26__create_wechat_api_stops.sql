-- WeChat APIs whose daily quota is used up (45009): every process refuses them itself until
-- `until`, the next Beijing midnight, instead of spending calls on refusals.
CREATE TABLE wechat_api_stops (
    appid       text        NOT NULL,
    path        text        NOT NULL,
    until       timestamptz NOT NULL,
    stopped_at  timestamptz NOT NULL,
    PRIMARY KEY (appid, path)
);

-- Every `clear_quota` an operator made: WeChat allows 10 per Beijing month, and the console shows
-- how many are used.
CREATE TABLE wechat_quota_clears (
    id          bigserial   PRIMARY KEY,
    appid       text        NOT NULL,
    cleared_by  text        NOT NULL,
    cleared_at  timestamptz NOT NULL
);
CREATE INDEX wechat_quota_clears_appid_cleared_at ON wechat_quota_clears (appid, cleared_at);
