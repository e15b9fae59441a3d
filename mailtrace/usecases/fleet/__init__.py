"""``mailtrace verify --domains FILE``: every domain of a list verified against its
topology, concurrently under one budget of DNS queries, in this process or on the
workers of a Dask cluster, from one or several vantage points.

- ``domains``: the list read one line at a time (bad lines named by number, never
  fatal), each line's domain and topology;
- ``seen``: the compact set that checks each domain once, however long the list;
- ``plan``: the lines turned into work — topologies loaded once, duplicates and domains
  a previous run finished (``--resume``) set aside;
- ``verifying``: the verification of many domains at once in one process (the same
  ``verify`` as for one domain, sharing a :class:`~mailtrace.clients.dns_pool.DnsPool`);
- ``local``: the fleet in this process; ``cluster``: shards of it on Dask workers, one
  vantage point per worker resource;
- ``results``: what comes back, joined per domain across vantages, each domain reported
  exactly once.
"""
