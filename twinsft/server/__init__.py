"""What a self-hosted ZenML server loads from this project: the workload manager that runs snapshot runs."""
