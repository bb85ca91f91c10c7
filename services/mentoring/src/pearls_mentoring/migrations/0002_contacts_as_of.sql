-- The time of the event whose contact list the row holds (decided_at of the
-- acceptance, changed_at of a contacts change): an older event arriving late never
-- overwrites newer contacts. NULL on rows written before (taken as the acceptance's).
ALTER TABLE participants ADD COLUMN contacts_as_of timestamptz;
UPDATE participants SET contacts_as_of = accepted_at WHERE contacts IS NOT NULL;
