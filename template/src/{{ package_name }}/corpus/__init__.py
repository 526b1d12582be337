"""Data Collection and Data Preparation for text: documents and instruction/answer pairs."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "collect": ("collect", "Data Collection: gather the documents and the instruction/answer pairs"),
    "validate": ("validate", "Data Preparation: the text data contract and the privacy check (no PII)"),
    "split": ("split", "Data Preparation: fine-tuning and held-out evaluation pairs"),
}
