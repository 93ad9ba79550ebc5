"""Datasets for demos, tests and benches: MovieLens-100K (offline) and synthetic stores."""
