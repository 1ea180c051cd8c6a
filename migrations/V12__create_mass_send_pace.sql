-- WeChat allows the mass APIs 60 calls a minute per account, not per process: every tagcast
-- process takes its send's slot here, so together they keep the configured pace.
CREATE TABLE mass_send_pace (
    id       boolean     PRIMARY KEY DEFAULT true CHECK (id),
    next_at  timestamptz NOT NULL
);
INSERT INTO mass_send_pace (id, next_at) VALUES (true, '-infinity');
