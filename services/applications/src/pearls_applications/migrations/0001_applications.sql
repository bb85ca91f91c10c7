-- Calls, applications, reviews, decisions and their audit trail.

CREATE TABLE calls (
    call_id               uuid PRIMARY KEY,
    title                 jsonb NOT NULL,
    description           jsonb NOT NULL,
    opens_at              timestamptz NOT NULL,
    closes_at             timestamptz NOT NULL CHECK (closes_at > opens_at),
    places                integer NOT NULL CHECK (places >= 1),
    themes                text[] NOT NULL,
    eligible_countries    text[] NOT NULL,
    population_min        integer NOT NULL CHECK (population_min >= 0),
    population_max        integer NOT NULL CHECK (population_max >= population_min),
    rubric                jsonb NOT NULL,
    reviews_required      integer NOT NULL CHECK (reviews_required >= 1),
    conflict_same_country boolean NOT NULL,
    public_url            text,
    status                text NOT NULL CHECK (status IN ('scheduled', 'open', 'closed')),
    closed_at             timestamptz,
    closed_early          boolean NOT NULL DEFAULT false,
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);
-- The scheduler looks for calls due to open or close.
CREATE INDEX calls_due ON calls (status, opens_at, closes_at) WHERE status <> 'closed';

CREATE TABLE applications (
    application_id    uuid PRIMARY KEY,
    call_id           uuid NOT NULL REFERENCES calls (call_id),
    status            text NOT NULL
        CHECK (status IN ('submitted', 'accepted', 'rejected', 'waitlisted', 'withdrawn')),
    city_name         text NOT NULL,
    city_key          text NOT NULL,
    place_kind        text NOT NULL,
    country           char(2) NOT NULL,
    population        integer NOT NULL CHECK (population >= 1),
    organisation_name text NOT NULL,
    organisation_type text NOT NULL,
    contacts          jsonb NOT NULL,
    themes            text[] NOT NULL,
    languages         text[] NOT NULL,
    motivation        text NOT NULL,
    challenges        text NOT NULL,
    commitments       text NOT NULL,
    token_hash        bytea NOT NULL,
    submitted_at      timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    score             double precision CHECK (score BETWEEN 0 AND 100),
    review_count      integer NOT NULL DEFAULT 0,
    decided_at        timestamptz,
    reason_code       text,
    decision_reason   text,
    from_waitlist     boolean NOT NULL DEFAULT false,
    withdrawn_reason  text,
    -- One application per city per call, whatever its status.
    CONSTRAINT one_application_per_city UNIQUE (call_id, country, city_key)
);
CREATE INDEX applications_by_call ON applications (call_id, status);

-- Second line of defence behind the call-row lock: the database itself never
-- holds more accepted applications than the call has places.
CREATE FUNCTION applications_places_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'accepted' AND (
        SELECT count(*) FROM applications WHERE call_id = NEW.call_id AND status = 'accepted'
    ) > (SELECT places FROM calls WHERE call_id = NEW.call_id) THEN
        RAISE EXCEPTION 'call % has no free place', NEW.call_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER applications_places_guard
    AFTER INSERT OR UPDATE OF status ON applications
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION applications_places_guard();

CREATE TABLE idempotency_keys (
    call_id        uuid NOT NULL REFERENCES calls (call_id),
    key_hash       bytea NOT NULL,
    request_hash   bytea NOT NULL,
    application_id uuid NOT NULL REFERENCES applications (application_id),
    -- The applicant token sealed with a key derived from the Idempotency-Key,
    -- so a retry can return it while the table alone never reveals it.
    sealed_token   bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, key_hash)
);

CREATE TABLE reviewers (
    reviewer_id text PRIMARY KEY,
    name        text NOT NULL,
    city_name   text NOT NULL,
    country     char(2) NOT NULL,
    token_hash  bytea UNIQUE,
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE review_assignments (
    application_id uuid NOT NULL REFERENCES applications (application_id),
    reviewer_id    text NOT NULL,
    assigned_by    text NOT NULL,
    assigned_at    timestamptz NOT NULL,
    PRIMARY KEY (application_id, reviewer_id)
);
CREATE INDEX review_assignments_by_reviewer ON review_assignments (reviewer_id);

CREATE TABLE reviews (
    application_id uuid NOT NULL,
    reviewer_id    text NOT NULL,
    scores         jsonb NOT NULL,
    comment        text NOT NULL,
    score          double precision NOT NULL CHECK (score BETWEEN 0 AND 100),
    reviewed_at    timestamptz NOT NULL,
    PRIMARY KEY (application_id, reviewer_id),
    FOREIGN KEY (application_id, reviewer_id)
        REFERENCES review_assignments (application_id, reviewer_id)
);

CREATE TABLE audit_log (
    entry_id       bigserial PRIMARY KEY,
    call_id        uuid NOT NULL REFERENCES calls (call_id),
    application_id uuid REFERENCES applications (application_id),
    actor          text NOT NULL,
    action         text NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}',
    at             timestamptz NOT NULL
);
CREATE INDEX audit_by_call ON audit_log (call_id, entry_id);
CREATE INDEX audit_by_application ON audit_log (application_id, entry_id);
