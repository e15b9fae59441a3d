"""The lab: an in-process, loopback-only mail world (DNS now) with injectable faults.

`mailtrace demo NAME` and the tests run triage against it, over real sockets and real
DNS wire format, without any packet leaving the machine.
"""
