"""SMTP probes: the gateway and the Exchange Online edge over real SMTP, and port 25."""
