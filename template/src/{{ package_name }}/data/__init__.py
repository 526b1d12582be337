"""Data Collection and Data Preparation: collect, validate, prepare."""
