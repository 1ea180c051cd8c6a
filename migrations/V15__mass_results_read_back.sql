-- A job's result read back with message/mass/get when its MASSSENDJOBFINISH never came: WeChat
-- answers a status only, so the counts stay unknown (NULL) unless the push turns up later and
-- replaces the row.
ALTER TABLE mass_job_results
    ALTER COLUMN total_count DROP NOT NULL,
    ALTER COLUMN filter_count DROP NOT NULL,
    ALTER COLUMN sent_count DROP NOT NULL,
    ALTER COLUMN error_count DROP NOT NULL,
    ADD COLUMN source text NOT NULL DEFAULT 'push' CHECK (source IN ('push', 'mass_get'));
