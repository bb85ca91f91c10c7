-- Access rules tightened: scores hidden from applicants until a decision, the
-- places guard names itself, decisions keep to their codes, idempotency keys age.

-- When an applicant may see its score and rank: 'never' or 'after_decision'
-- (the default, also for the calls that exist already).
ALTER TABLE calls ADD COLUMN scores_visible_to_applicants text NOT NULL DEFAULT 'after_decision'
    CONSTRAINT calls_scores_visible_to_applicants_check
    CHECK (scores_visible_to_applicants IN ('never', 'after_decision'));

-- The guard raises under a constraint name of its own, so a refused commit is
-- answered as "no free place" and not mistaken for any other check.
CREATE OR REPLACE FUNCTION applications_places_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'accepted' AND (
        SELECT count(*) FROM applications WHERE call_id = NEW.call_id AND status = 'accepted'
    ) > (SELECT places FROM calls WHERE call_id = NEW.call_id) THEN
        RAISE EXCEPTION 'call % has no free place', NEW.call_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'applications_places_guard';
    END IF;
    RETURN NULL;
END $$;

-- A decision's reason code is one of the known ones (the API checks it first).
-- NOT VALID: rows written before stay as they are; every new write is checked.
ALTER TABLE applications ADD CONSTRAINT applications_reason_code_check
    CHECK (reason_code IN ('ineligible', 'incomplete', 'not_selected', 'other')) NOT VALID;

-- Idempotency records are purged after a retention period (oldest first).
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
