-- What WeChat's originality check said about each article of a mass job (MASSSENDJOBFINISH's
-- CopyrightCheckResult: CheckState and its items), so the campaign page can name the original
-- an article was matched to when a send stops at err(30002)/err(30003). NULL for results read
-- back with mass/get and for pushes without the element.
ALTER TABLE mass_job_results ADD COLUMN copyright jsonb;
