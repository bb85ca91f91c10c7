-- Contact directory: who to write to, built from events. ``as_of`` is the time of
-- the event that wrote the row: events of different partitions arrive in any
-- order, and an older event must never overwrite what a newer one said.
CREATE TABLE participant_contacts (
    participant_id uuid        NOT NULL,  -- = application id
    email          text        NOT NULL,  -- lower case
    name           text        NOT NULL,
    language       text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('primary', 'backup')),
    city_name      text        NOT NULL,
    as_of          timestamptz NOT NULL,
    PRIMARY KEY (participant_id, email)
);

-- Participants whose contacts were erased (withdrawn, rejected): an older event
-- arriving late must not bring their addresses back.
CREATE TABLE erased_participants (
    participant_id uuid        PRIMARY KEY,
    as_of          timestamptz NOT NULL
);

CREATE TABLE mentors (
    mentor_id  uuid        PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    language   text        NOT NULL,
    as_of      timestamptz NOT NULL
);

-- Which mentor supports which participant (for events that name only one side).
CREATE TABLE mentor_assignments (
    participant_id uuid PRIMARY KEY,
    mentor_id      uuid,  -- NULL: unassigned (kept, so an older 'assigned' cannot revive it)
    as_of          timestamptz NOT NULL
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
