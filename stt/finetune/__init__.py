"""Fine-tuning: the engine, what a run trains on, and runs as jobs in their own process."""
