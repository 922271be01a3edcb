"""The answer engine: what the bot knows (the knowledge base) and how it decides what to say.

normalise -> redact -> route -> retrieve -> decide -> compose, over Markdown articles. The model service that
can write the final reply lives in :mod:`llm`; this package hands it grounded prompts.
"""
