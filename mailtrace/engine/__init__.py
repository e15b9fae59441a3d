"""The engine: plan the probes of each tier in flow order, run them, decide the verdict."""
