"""Serving stage: answer instructions with the merged model of a ZenML Model version, as a ZenML deployment.

Plain functions here (request checks, which version a stage serves, loading and answering); the ZenML
pipeline that the deployer serves is `twinsft.pipelines.llm_serve`, its command `run.py serve`.
"""
