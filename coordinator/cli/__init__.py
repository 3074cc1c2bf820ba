"""The command line: python -m coordinator ..."""
