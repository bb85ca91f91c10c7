"""I/O of the notifications service: SQL, templates, MIME, SMTP."""
