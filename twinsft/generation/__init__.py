"""Greedy decoding with the tuned model: the smoke generation, and the export's check that a saved
model generates what the model in memory did."""
