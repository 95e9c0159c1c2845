//! Peer tests: endorsement, validation and commit of blocks over in-memory stores with fake identities.

mod support;
mod validation;
