"""Probes of a Proofpoint tier through its own APIs (PoD/PPS, Essentials, TAP)."""
