"""twinsft: the library behind the LLM Twin SFT pipeline. Importing it has no side effects."""

__version__ = "0.1.0"
