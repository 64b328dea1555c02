"""Every check before and during a run, in one place below the command line: preflight (the configuration,
local data, this machine), the active stack's checks, where each step runs, gated models, the sequence
budget, and the check a GPU step repeats on its own machine.

Each failure is a `ConfigError`: one line naming the field or file and the fix. The checks take a pipeline's
table of steps (`StepFacts`) as an argument, so any pipeline built from these steps is checked the same way.
"""
