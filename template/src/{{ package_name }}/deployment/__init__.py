"""Deployment (D): the prediction service, batch scoring, packaging and QA of the model."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "package": ("package", "Deployment: gather the model and its signature for the serving image"),
    "serve": ("app", "Deployment: run the HTTP prediction service"),
    "score": ("batch", "Deployment: batch-score a CSV file"),
    "qa": ("qa", "Deployment: QA a running service (requests, load test, responsible AI)"),
    "fairness": ("fairness", "Responsible AI: group metrics of the sensitive feature"),
}
