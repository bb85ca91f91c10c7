-- Participants (from applications' events), mentors, matches, action plans,
-- milestones, co-learning sessions, the playbook and the audit trail.

CREATE TABLE participants (
    participant_id         uuid PRIMARY KEY,          -- = application id
    call_id                uuid,
    status                 text NOT NULL CHECK (status IN ('active', 'withdrawn')),
    city_name              text,
    city_key               text,
    country                char(2),
    population             integer,
    contacts               jsonb,
    themes                 text[] NOT NULL DEFAULT '{}',
    languages              text[] NOT NULL DEFAULT '{}',
    applicant_token_sha256 bytea,
    accepted_at            timestamptz,
    withdrawn_at           timestamptz,
    -- Set while the matcher finds no mentor; the coordinators were told once.
    unmatched_reasons      text[],
    unmatched_summary      text,
    unmatched_since        timestamptz,
    -- The acceptance's correlation id travels on into the match it causes.
    correlation_id         text,
    cause_event_id         text,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    -- A withdrawal that arrives before the acceptance leaves a row with no data yet.
    CHECK (status = 'withdrawn' OR (city_name IS NOT NULL AND country IS NOT NULL
                                    AND contacts IS NOT NULL))
);
CREATE INDEX participants_waiting ON participants (accepted_at) WHERE status = 'active';

CREATE TABLE mentors (
    mentor_id     uuid PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('national_expert', 'pearl_city')),
    name          text NOT NULL,
    email         text NOT NULL,
    language      text NOT NULL,
    languages     text[] NOT NULL,
    country       char(2) NOT NULL,
    city_name     text,
    city_key      text,
    organisation  text,
    capacity      integer NOT NULL CHECK (capacity >= 1),
    themes        text[] NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'paused')),
    token_sha256  bytea NOT NULL UNIQUE,
    registered_at timestamptz NOT NULL,
    registered_by text NOT NULL
);
CREATE UNIQUE INDEX mentors_one_per_email ON mentors (lower(email));

CREATE TABLE assignments (
    assignment_id   bigserial PRIMARY KEY,
    participant_id  uuid NOT NULL REFERENCES participants (participant_id),
    mentor_id       uuid NOT NULL REFERENCES mentors (mentor_id),
    assigned_at     timestamptz NOT NULL,
    assigned_by     text NOT NULL,
    explanation     jsonb NOT NULL,
    score           double precision,
    overridden      boolean NOT NULL DEFAULT false,
    override_reason text,
    ended_at        timestamptz,
    end_reason      text
);
-- At most one current mentor per participant.
CREATE UNIQUE INDEX assignments_current ON assignments (participant_id) WHERE ended_at IS NULL;
CREATE INDEX assignments_by_mentor ON assignments (mentor_id) WHERE ended_at IS NULL;

CREATE TABLE plans (
    plan_id           uuid PRIMARY KEY,
    participant_id    uuid NOT NULL UNIQUE REFERENCES participants (participant_id),
    status            text NOT NULL
        CHECK (status IN ('submitted', 'changes_requested', 'approved', 'completed')),
    current_revision  integer NOT NULL CHECK (current_revision >= 1),
    approved_revision integer,
    approved_at       timestamptz,
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

-- Every version of a plan is kept; a resubmission after changes is a new revision.
CREATE TABLE plan_revisions (
    plan_id        uuid NOT NULL REFERENCES plans (plan_id),
    revision       integer NOT NULL CHECK (revision >= 1),
    title          text NOT NULL,
    language       text NOT NULL,
    starts_on      date NOT NULL,
    ends_on        date NOT NULL,
    goals          jsonb NOT NULL,
    measures       jsonb NOT NULL,
    milestones     jsonb NOT NULL,
    submitted_at   timestamptz NOT NULL,
    review_status  text NOT NULL CHECK (review_status IN ('pending', 'approved',
                                                          'changes_requested', 'superseded')),
    reviewed_at    timestamptz,
    reviewed_by    uuid,
    comments       text,
    PRIMARY KEY (plan_id, revision)
);

-- The milestones of the approved revision: progress and overdue notices.
CREATE TABLE milestones (
    milestone_id     uuid PRIMARY KEY,
    plan_id          uuid NOT NULL REFERENCES plans (plan_id),
    position         integer NOT NULL,
    title            text NOT NULL,
    due_date         date NOT NULL,
    reached_at       timestamptz,
    evidence_summary text,
    evidence_urls    text[] NOT NULL DEFAULT '{}',
    overdue_noticed_on date      -- set once, with the overdue event, in one transaction
);
CREATE INDEX milestones_due ON milestones (due_date)
    WHERE reached_at IS NULL AND overdue_noticed_on IS NULL;

CREATE TABLE progress_reports (
    report_id     bigserial PRIMARY KEY,
    milestone_id  uuid NOT NULL REFERENCES milestones (milestone_id),
    reported_at   timestamptz NOT NULL,
    note          text NOT NULL,
    evidence_urls text[] NOT NULL DEFAULT '{}',
    reached       boolean NOT NULL
);

CREATE TABLE sessions (
    session_id  uuid PRIMARY KEY,
    title       text NOT NULL,
    language    text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    time_zone   text NOT NULL,
    location    text,
    online_url  text,
    themes      text[] NOT NULL,
    agenda      jsonb NOT NULL,
    hosts       uuid[] NOT NULL,
    invited     uuid[] NOT NULL,
    attended    uuid[],
    notes       text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE playbook (
    entry_id        uuid PRIMARY KEY,
    theme           text NOT NULL,
    language        text NOT NULL,
    title           text NOT NULL,
    summary         text NOT NULL,
    body            text NOT NULL,
    city_name       text,
    country         char(2),
    source          text NOT NULL CHECK (source IN ('curated', 'action_plan')),
    source_plan_id  uuid,
    source_measure  uuid,
    published_at    timestamptz NOT NULL,
    published_by    text NOT NULL,
    search          tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', title || ' ' || summary || ' ' || body)) STORED,
    UNIQUE (source_plan_id, source_measure)
);
CREATE INDEX playbook_by_theme ON playbook (theme, language);
CREATE INDEX playbook_search ON playbook USING gin (search);

CREATE TABLE audit (
    audit_id       bigserial PRIMARY KEY,
    at             timestamptz NOT NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    participant_id uuid,
    mentor_id      uuid,
    details        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_participant ON audit (participant_id, at);
