//! Solo chain tests (below).
