"""`make run`: start the whole system locally and play the demo through the public API."""
