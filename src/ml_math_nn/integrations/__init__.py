"""Reach other tools: the scikit-learn estimator built on the library."""
