-- Issue 19: a push's transaction stores only its event. What the push decided (tag changes from
-- rules and quizzes) rides in `effects`; a consumer tails `events` by id and applies them, with the
-- follower's `last_seen`, subscribe state and scene, exactly once per event.
ALTER TABLE events ADD COLUMN effects jsonb;

-- Where each consumer of `events` stands: every id <= mark is applied except those in `holes`
-- (ids taken by transactions not committed when the consumer passed them; one that never
-- commits is dropped after a patience far beyond any writer's statement timeout).
CREATE TABLE event_cursors (
    name        text        PRIMARY KEY,
    mark        bigint      NOT NULL,
    holes       bigint[]    NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Events already stored were applied inside their own transactions by the release before.
INSERT INTO event_cursors (name, mark) SELECT 'tagging', coalesce(max(id), 0) FROM events;
