"""FastAPI + PyTorch decision service for the custom_ml agent (see README.md). Not imported by the Functions app."""
