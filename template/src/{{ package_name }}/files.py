"""Where the project's settings files are, relative to the project root: the one module the
settings' readers (config.py), their checks (settings.py) and the gates (gates.py) all import,
so none of the three imports another to learn a file's name."""

PARAMS_FILE = "params.yaml"
KPIS_FILE = "business/kpis.yaml"
