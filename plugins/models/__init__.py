"""Non-LLM "models" that `rft eval` can score beside LLMs (entry-point group `rftkit.models`)."""
