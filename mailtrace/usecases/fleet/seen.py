"""The domains a fleet has met, held compactly: each is checked once, however long the
list.

A set of names would hold every name (some 100 bytes each in Python); this holds a
64-bit fingerprint (BLAKE2b, RFC 7693) and the line it was first met on, 12 bytes a slot
in two flat arrays with open addressing, kept at most half full: about 24 to 48 bytes per
domain, so a 1,000,000-line list costs some 40 MB, not 100+. Two different domains share
a fingerprint with a probability of about n²/2⁶⁵ (for a million domains, 3 in 100
million): the price of not holding the names.
"""

from __future__ import annotations

import hashlib
from array import array

_EMPTY = 0


def fingerprint(key: str) -> int:
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return value or 1  # 0 marks an empty slot


class SeenSet:
    """Fingerprints of the keys met, each with the line it was first met on."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < 2 * capacity:
            size *= 2
        self._keys = array("Q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return self._keys.itemsize * len(self._keys) + self._lines.itemsize * len(self._lines)

    def _slot(self, key: int) -> int:
        slot = key & self._mask
        keys = self._keys
        while keys[slot] != _EMPTY and keys[slot] != key:
            slot = (slot + 1) & self._mask  # linear probing
        return slot

    def add(self, key: str, line: int = 0) -> int | None:
        """Note ``key``, met on ``line``; the line it was first met on when it was already
        there (then nothing changes), else None."""
        value = fingerprint(key)
        slot = self._slot(value)
        if self._keys[slot] == value:
            return int(self._lines[slot])
        self._keys[slot] = value
        self._lines[slot] = min(line, 0xFFFFFFFF)
        self._count += 1
        if 2 * self._count > len(self._keys):
            self._grow()
        return None

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        value = fingerprint(key)
        return self._keys[self._slot(value)] == value

    def _grow(self) -> None:
        keys, lines = self._keys, self._lines
        size = 2 * len(keys)
        self._keys = array("Q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        self._mask = size - 1
        for value, line in zip(keys, lines, strict=True):
            if value != _EMPTY:
                slot = self._slot(value)
                self._keys[slot] = value
                self._lines[slot] = line
