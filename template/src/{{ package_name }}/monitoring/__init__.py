"""Monitoring: data drift of production inputs, and the retraining trigger."""
