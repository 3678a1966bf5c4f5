"""Event data and file formats."""
