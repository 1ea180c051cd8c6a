-- Orders posted to `POST /api/v1/events` (issue 5). Kept whether or not the follower is known:
-- segments and dynamic tags join on openid, so they count once the follower appears.
-- The first version of an id wins; a re-sent id is a duplicate, whatever it carries.
CREATE TABLE orders (
    id            text        PRIMARY KEY,
    openid        text        NOT NULL,
    -- 分; negative for a refund.
    amount_cents  bigint      NOT NULL,
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
-- `orders(W)` and `spent(W)` of one follower are an index-only range scan.
CREATE INDEX orders_openid_occurred_at ON orders (openid, occurred_at) INCLUDE (amount_cents);

-- `clicked("KEY", W)` of one follower: a range scan of that follower's clicks only.
CREATE INDEX events_openid_kind_occurred_at ON events (openid, kind, occurred_at);

-- Saved audiences; members are counted live from `expr`, never stored.
CREATE TABLE segments (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL,
    -- The canonical text of the expression (CONTRACT.md §5).
    expr        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL
);
