"""The local development stack behind `make run`. Never deployed: it lives outside chalicelib/."""
