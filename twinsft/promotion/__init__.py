"""Promotion: whether a run's model version moves to a stage (`staging`, `production`) of its ZenML Model.

A version moves only on held-out evidence, and every reason is written down: `decision` compares the
numbers (no ZenML, no model), `evidence` gathers them from a version's evaluation and export, re-evaluating
the staged version on the candidate's rows when it was measured on others, and `registry` reads and sets
the stages. The `promote` step and `run.py promote` both call `registry.promote_version`.
"""
