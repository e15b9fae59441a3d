"""The shared vocabulary: findings, typed evidence, the tag catalog, addresses and
network endpoints."""
