-- The trace each e-mail belongs to (OpenTelemetry, W3C trace context): the trace of
-- the event that planned it, continued by the delivery span. ``trace_id`` is the
-- 32-hex id to look the trace up by; ``trace_context`` holds the ``traceparent`` (and
-- ``tracestate``) headers the sender continues from. NULL for rows planned outside
-- any trace (older rows); the sender then fills in the id of the trace it starts.
ALTER TABLE deliveries ADD COLUMN trace_id text
    CHECK (trace_id IS NULL OR trace_id ~ '^[0-9a-f]{32}$');
ALTER TABLE deliveries ADD COLUMN trace_context jsonb;
CREATE INDEX deliveries_trace ON deliveries (trace_id) WHERE trace_id IS NOT NULL;
