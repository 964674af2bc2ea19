"""The ``loadwise`` command: thin handlers over the library (see main.py)."""
