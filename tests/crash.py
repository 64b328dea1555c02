"""A real crash at a point a test can rely on: SIGKILL right after the Trainer saved a checkpoint (no cleanup, no
exception handling). Imported by the programs the resume tests run in a subprocess, and by the isolated step
process (tests/isolated_process.py)."""

from __future__ import annotations

import os
import signal


def kill_after_save(step: int) -> None:
    """SIGKILL this process right after the Trainer saved checkpoint `step` or a later one (twinsft's own on_save
    callback, which marks and uploads it, is registered first and so runs first)."""
    import transformers

    class KillAfterSave(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step >= step:
                os.kill(os.getpid(), signal.SIGKILL)

    init = transformers.Trainer.__init__

    def with_killer(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        self.add_callback(KillAfterSave())

    transformers.Trainer.__init__ = with_killer
