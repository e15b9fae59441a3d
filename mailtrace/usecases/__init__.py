"""What the user asks for (triage, verify, precheck, ndr, headers, demo), planned and
run through the engine."""
