"""Old import path of the report and generation materializers: artifacts stored before the stage layout name it."""

from twinsft.steps.visualizations import GenerationMaterializer, SmokeResponse, TrainReportMaterializer

__all__ = ["GenerationMaterializer", "SmokeResponse", "TrainReportMaterializer"]
