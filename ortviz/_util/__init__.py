"""Plumbing every stage uses: atomic writes, file locks, what a path names, and the signals that end a run."""
