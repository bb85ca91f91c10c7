-- Which rule computed each stored city_key (pearls_shared.names.KEY_RULE); NULL for rows
-- written before it was recorded. A submission lets the database find the applications
-- whose key of the current rule equals its own, and computes again in Python only the
-- keys of rows written under another rule, instead of keying every application of the
-- call on every submission (which made each one slower as the call filled).
ALTER TABLE applications ADD COLUMN city_key_rule text;
CREATE INDEX applications_city_key_rule ON applications (call_id, country, city_key_rule);
