"""Training: labels, patient-level folds, tasks and metrics, and the loop shared by every method."""
