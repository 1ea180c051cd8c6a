-- Click tracking for campaigns (issue 6): short links `/r/{code}` put in a message, and every
-- click on them, attributed to a follower when WeChat's web OAuth (snsapi_base) told us who.
CREATE TABLE campaign_links (
    code         text        PRIMARY KEY,
    campaign_id  bigint      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    url          text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_links_campaign ON campaign_links (campaign_id);

CREATE TABLE campaign_clicks (
    id           bigserial   PRIMARY KEY,
    code         text        NOT NULL REFERENCES campaign_links (code) ON DELETE CASCADE,
    campaign_id  bigint      NOT NULL,
    -- NULL when the click could not be attributed (opened outside WeChat, OAuth refused).
    openid       text,
    clicked_at   timestamptz NOT NULL
);
CREATE INDEX campaign_clicks_campaign ON campaign_clicks (campaign_id, openid);
