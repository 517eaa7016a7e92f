"""The alerts worker: raises, holds and clears alerts about stations, and notifies."""
