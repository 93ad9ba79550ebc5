"""Candidate generators: each turns training data into arrays the model can serve from.

They are plain functions over integer indices (see :mod:`ml.data`); :mod:`ml.model` wires them
together and owns persistence.
"""
