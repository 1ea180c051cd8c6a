-- Admin sessions on the server (issue 15): the encrypted, signed cookie now carries a random
-- session id, and a request is signed in only while its row is here. Signing out deletes the
-- row, so a cookie copied before is worthless, on every instance at once. Cookies of the
-- previous release carry no id: their users sign in once more after the upgrade.
CREATE TABLE admin_sessions (
    -- BLAKE2b-256 of the id in the cookie: reading this table does not give working sessions.
    id_hash     bytea       PRIMARY KEY,
    admin_id    bigint      NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Twelve hours after sign-in at most, whatever the browser keeps.
    expires_at  timestamptz NOT NULL
);
CREATE INDEX admin_sessions_admin_id ON admin_sessions (admin_id);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);

-- Disabling a user, or changing their role or password, ends all their sessions, whoever makes
-- the change: tagcast's pages and API, a later release, or an operator in psql.
CREATE FUNCTION end_sessions_of_changed_admin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM admin_sessions WHERE admin_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER admins_end_their_sessions
    AFTER UPDATE OF password_hash, role, disabled_at, username ON admins
    FOR EACH ROW
    WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash
          OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.username IS DISTINCT FROM NEW.username
          OR (NEW.disabled_at IS NOT NULL AND OLD.disabled_at IS NULL))
    EXECUTE FUNCTION end_sessions_of_changed_admin();
