"""Downstream reconstruction on network output: Michel electrons (and, later, event selections)."""
