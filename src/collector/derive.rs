//! Turning two consecutive samples of a domain into rates (pure).
