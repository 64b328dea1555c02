"""Where instruction data comes from: local files and folders, Hub datasets, ZenML artifacts.

`table` holds the checks every source goes through; `local` reads files without heavy imports, so
preflight can run the same checks before torch, datasets or ZenML load.
"""
