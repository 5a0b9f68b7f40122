"""Agent rollouts: tools in OpenAI's function format, tool calls parsed from replies, multi-turn episodes."""
