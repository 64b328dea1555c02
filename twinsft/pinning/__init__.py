"""What a run reads, pinned when it is submitted: Hub revisions as commit ids (`hub`), a local model's
weights as a content digest (`model`), the data mix as fingerprints of files, Hub commits and artifact
versions (`data`), and the twinsft code a step or the training body runs (`code`).

The pins are step parameters or parts of cache and checkpoint keys, so whatever a step reads that changed
reruns it, and nothing else does. On a remote stack each step runs in its own pod: resolving once, on the
client, makes every step read the same commit.
"""
