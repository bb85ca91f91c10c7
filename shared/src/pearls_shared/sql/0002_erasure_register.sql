-- Erasure registers (GDPR art. 17), in every service's database: what was erased,
-- never the address itself. Data that arrives later for a registered address or
-- application (an older event delivered late, a replay or a rebuild from the
-- topics) is pseudonymised on arrival (pearls_shared.privacy).
CREATE TABLE erased_addresses (
    email_hash  text        PRIMARY KEY CHECK (email_hash ~ '^[0-9a-f]{64}$'),  -- HMAC-SHA256
    erasure_id  uuid        NOT NULL,
    erased_at   timestamptz NOT NULL
);

CREATE TABLE erased_applications (
    application_id uuid        PRIMARY KEY,
    erasure_id     uuid        NOT NULL,
    erased_at      timestamptz NOT NULL
);
