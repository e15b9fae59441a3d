"""Reports of a triage: text for people, JSON for scripts (schema mailtrace/triage-1)."""
