"""The operator's command line for a Pearls deployment (``pearls --help``)."""
