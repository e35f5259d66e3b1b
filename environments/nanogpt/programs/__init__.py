"""Reference programs (baselines) of the nanogpt variants, read as text by the environment."""
