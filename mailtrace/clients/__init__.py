"""Network clients: the only code in mailtrace that does network I/O."""
