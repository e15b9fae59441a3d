"""The probe catalog: the probe contract (``base``), every probe by tier kind
(``registry``), and the tags' levels, messages and remediation (``catalog/*.yaml``).

Installed as ``mailtrace.probes``. This module imports nothing, so reading the tag
catalog's data does not load every probe.
"""
