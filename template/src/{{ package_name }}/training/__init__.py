"""Model Development (traditional): train and evaluate a scikit-learn pipeline."""
