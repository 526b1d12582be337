"""The Dask engine (``engine.name: dask`` in params.yaml): collect, prepare and train on a cluster.

``client.py`` connects to the cluster, ``stages.py`` holds the stages' cluster versions; the commands
(``collect``, ``prepare``, ``train``) are the same, and pick these when the engine says so.
"""
