"""Data Collection and Data Preparation: collect, validate, prepare."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "collect": ("collect", "Data Collection: fetch the raw dataset"),
    "profile": ("profile", "First run: column roles, data contract and business defaults from the data"),
    "validate": ("validate", "Data Preparation: check raw data against the expectation suite"),
    "suite": ("suite", "Write the expectation suite profiled from the current raw data"),
    "prepare": ("prepare", "Data Preparation: clean and split into train/test"),
}
