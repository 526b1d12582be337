"""Model Development (traditional): train and evaluate a scikit-learn pipeline."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "train": ("train", "Model Development: fit the model"),
    "evaluate": ("evaluate", "Model Development: test-split metrics, business gate, MLflow"),
    "plots": ("plots", "Model Development: evaluation plots as one offline page (reports/plots.html)"),
}
