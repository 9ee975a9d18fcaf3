"""Training and evaluation of the shipped classifiers (scripts, not imported at run time)."""
