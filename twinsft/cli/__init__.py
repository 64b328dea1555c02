"""`run.py`: read and check a run configuration before anything heavy loads, run or replay the
pipeline, and print what it made."""
