"""The command-line uploader: `python -m uploader upload FILE --api URL`. Never deployed."""
