"""Instrument simulator: writes files in the instruments' real formats, ground truth kept apart.

Nothing in the pipeline reads the ground truth; tests read it to judge model outputs.
"""
