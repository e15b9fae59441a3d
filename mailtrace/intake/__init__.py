"""Evidence intake: the bounce (NDR/DSN) or the message headers an admin already has.

``intake`` reads the file within a size cap and refuses what is not an email; ``dsn``
pulls the per-recipient delivery status out of RFC 3464 reports and the common
non-standard bounce texts; ``codes`` explains a status code from the catalog;
``received`` and ``headers`` turn a header block into hops and findings; ``tiers``
attributes hosts to the tiers of a declared topology. Nothing here does network I/O.
"""
