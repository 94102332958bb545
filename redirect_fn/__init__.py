"""The redirect Lambda. Standard library and botocore only: see handler.py."""
