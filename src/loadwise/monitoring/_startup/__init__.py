"""Put on PYTHONPATH by ``loadwise watch``: holds the ``sitecustomize`` that installs the hook."""
