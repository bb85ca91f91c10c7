-- Contact directory: who to write to, built from events.
CREATE TABLE participant_contacts (
    participant_id uuid        NOT NULL,  -- = application id
    email          text        NOT NULL,  -- lower case
    name           text        NOT NULL,
    language       text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('primary', 'backup')),
    city_name      text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, email)
);

CREATE TABLE mentors (
    mentor_id  uuid        PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    language   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Which mentor supports which participant (for events that name only one side).
CREATE TABLE mentor_assignments (
    participant_id uuid PRIMARY KEY,
    mentor_id      uuid NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per (causing event, recipient, template): the guarantee of "never twice".
CREATE TABLE deliveries (
    id              uuid        PRIMARY KEY,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    correlation_id  text        NOT NULL,
    recipient       text        NOT NULL,  -- lower case
    recipient_name  text        NOT NULL,
    language        text        NOT NULL,
    template        text        NOT NULL,
    category        text        NOT NULL CHECK (category IN ('essential', 'progress', 'sessions')),
    context         jsonb       NOT NULL,
    message_id      text        NOT NULL UNIQUE,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'digest', 'digested')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    smtp_code       integer,
    digest_id       uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    failed_at       timestamptz,
    UNIQUE (event_id, recipient, template)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_recipient ON deliveries (recipient, created_at);
CREATE INDEX deliveries_digest ON deliveries (recipient) WHERE status = 'digest';

-- Per-recipient choice for each non-essential category; no row = 'immediate'.
CREATE TABLE preferences (
    recipient  text        NOT NULL,
    category   text        NOT NULL CHECK (category IN ('progress', 'sessions')),
    mode       text        NOT NULL CHECK (mode IN ('immediate', 'digest', 'off')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient, category)
);
