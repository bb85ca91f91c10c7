-- Erasures coordinators asked for (GDPR art. 17): who, when, what. Never the address:
-- a person is named by the keyed hash of the address (pearls_shared.privacy).
CREATE TABLE erasures (
    erasure_id     uuid        PRIMARY KEY,
    scope          text        NOT NULL CHECK (scope IN ('person', 'application')),
    email_hashes   text[]      NOT NULL,
    application_id uuid REFERENCES applications (application_id),
    applications   uuid[]      NOT NULL,  -- the applications whose contacts were erased
    requested_by   text        NOT NULL,
    requested_at   timestamptz NOT NULL
);
