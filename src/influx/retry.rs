//! Classifying write responses: done, reject, split, retry, auth (pure).
