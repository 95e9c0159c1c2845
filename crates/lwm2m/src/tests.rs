//! Unit tests (see tests/it for codec golden vectors and property tests).
