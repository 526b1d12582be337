"""Tools: typed functions an agent may call, their schemas from their signatures (``registry.py``)."""
