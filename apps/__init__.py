"""Applications deployed next to vLLM (each one its own container image)."""
