"""mailtrace: localize a mail-flow fault to one tier of a declared topology, with evidence."""

__version__ = "0.1.0"
