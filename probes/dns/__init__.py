"""Probes of the public-DNS tier and of the observer's resolvers."""
