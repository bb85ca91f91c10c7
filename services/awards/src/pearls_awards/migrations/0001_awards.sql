-- The participants' view (built from events only), award rounds, jury,
-- nominations, scores, awards and the audit trail.

-- Every column is a commutative merge of events (sets, maxima, terminal flags), so
-- the view rebuilt from the topics equals the live one whatever order it reads them in.
CREATE TABLE participants (
    participant_id      uuid PRIMARY KEY,
    call_id             uuid,
    city_name           text,
    city_key            text,
    country             char(2),
    contacts            jsonb,
    themes              text[] NOT NULL DEFAULT '{}',
    accepted_at         timestamptz,
    withdrawn_at        timestamptz,
    plan_stage          integer NOT NULL DEFAULT 0,  -- 0 none, 1 submitted, 2 approved, 3 completed
    approved_revision   integer,
    approved_milestones jsonb NOT NULL DEFAULT '{}',  -- milestone id -> {title, due_date}
    reached             jsonb NOT NULL DEFAULT '{}',  -- milestone id -> "title: evidence"
    overdue             text[] NOT NULL DEFAULT '{}',
    achievements        text[] NOT NULL DEFAULT '{}',
    mentors             jsonb NOT NULL DEFAULT '{}'   -- mentor id -> {email, name, assigned_at, unassigned_at}
);

CREATE TABLE rounds (
    round_id                 uuid PRIMARY KEY,
    title                    jsonb NOT NULL,
    opened_at                timestamptz NOT NULL,
    closes_at                timestamptz NOT NULL,
    criteria                 jsonb NOT NULL,
    plan_approved_required   boolean NOT NULL,
    min_milestone_share      double precision NOT NULL CHECK (min_milestone_share BETWEEN 0 AND 1),
    call_ids                 uuid[] NOT NULL DEFAULT '{}',
    awards_count             integer NOT NULL CHECK (awards_count >= 1),
    per_country              integer NOT NULL CHECK (per_country >= 1),
    additional_award_allowed boolean NOT NULL,
    tight_margin             double precision NOT NULL CHECK (tight_margin >= 0),
    normalise                boolean NOT NULL,
    status                   text NOT NULL CHECK (status IN ('open', 'closed')),
    closed_at                timestamptz,
    result                   jsonb,
    opened_by                text NOT NULL
);

CREATE TABLE jurors (
    round_id     uuid NOT NULL REFERENCES rounds (round_id),
    juror_id     uuid NOT NULL,
    name         text NOT NULL,
    email        text NOT NULL,
    language     text NOT NULL,
    city_name    text,
    city_key     text,
    country      char(2),
    mentor_id    uuid,
    token_sha256 bytea NOT NULL UNIQUE,
    PRIMARY KEY (round_id, juror_id)
);

CREATE TABLE nominations (
    round_id       uuid NOT NULL REFERENCES rounds (round_id),
    participant_id uuid NOT NULL,  -- no foreign key: the view may be rebuilt
    nominated_at   timestamptz NOT NULL,
    nominated_by   text NOT NULL,
    statement      text,
    PRIMARY KEY (round_id, participant_id)
);

-- Conflicts of interest as derived (never declared), kept so coordinators see why.
CREATE TABLE exclusions (
    round_id       uuid NOT NULL,
    juror_id       uuid NOT NULL,
    participant_id uuid NOT NULL,
    reason         text NOT NULL CHECK (reason IN ('mentored', 'same_city')),
    detail         text NOT NULL,
    noticed_at     timestamptz NOT NULL,
    PRIMARY KEY (round_id, juror_id, participant_id, reason)
);

CREATE TABLE scores (
    round_id       uuid NOT NULL,
    juror_id       uuid NOT NULL,
    participant_id uuid NOT NULL,
    criterion_id   text NOT NULL,
    value          integer NOT NULL,
    scored_at      timestamptz NOT NULL,
    PRIMARY KEY (round_id, juror_id, participant_id, criterion_id),
    FOREIGN KEY (round_id, participant_id) REFERENCES nominations (round_id, participant_id)
);

CREATE TABLE awards (
    round_id         uuid NOT NULL REFERENCES rounds (round_id),
    participant_id   uuid NOT NULL,
    slug             text NOT NULL UNIQUE,
    rank             integer NOT NULL,
    score            double precision NOT NULL,
    additional_award boolean NOT NULL,
    citation         jsonb NOT NULL,
    achievements     text[] NOT NULL,
    themes           text[] NOT NULL,
    city_name        text NOT NULL,
    country          char(2) NOT NULL,
    year             integer NOT NULL,
    round_title      text NOT NULL,
    granted_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoke_reason    text,
    PRIMARY KEY (round_id, participant_id)
);

CREATE TABLE audit (
    audit_id       bigserial PRIMARY KEY,
    at             timestamptz NOT NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    round_id       uuid,
    participant_id uuid,
    details        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_round ON audit (round_id, at);
