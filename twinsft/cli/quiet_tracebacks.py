"""Keep a step's UserError to one line: ZenML logs a failed step's traceback, which is noise for bad input."""

from __future__ import annotations

import logging

from twinsft.errors import UserError

# The ZenML 0.98 loggers that report a failed step with its traceback (logger.exception).
STEP_FAILURE_LOGGERS = (
    "zenml.orchestrators.local.local_orchestrator",
    "zenml.orchestrators.dag_runner",
    "zenml.orchestrators.step_launcher",
    "zenml.orchestrators.step_runner",
)


class DropUserErrorTraceback(logging.Filter):
    """Keeps the record (it names the failed step) but not the traceback of a UserError."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UserError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_user_error_tracebacks() -> None:
    for name in STEP_FAILURE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropUserErrorTraceback) for f in logger.filters):
            logger.addFilter(DropUserErrorTraceback())
