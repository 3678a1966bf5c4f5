"""Event displays and plots."""
