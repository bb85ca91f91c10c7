-- The time of the event whose contact list the view holds (the acceptance's
-- decided_at or a contacts change's changed_at): the latest wins, whatever order the
-- events arrive in, so the merge stays commutative.
ALTER TABLE participants ADD COLUMN contacts_as_of timestamptz;
UPDATE participants SET contacts_as_of = accepted_at WHERE contacts IS NOT NULL;
