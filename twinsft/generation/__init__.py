"""Greedy decoding with the tuned model: the smoke generation, base vs tuned on held-out rows (`evaluate`),
and the export's check that a saved model generates what the model in memory did."""
