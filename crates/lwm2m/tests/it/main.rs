//! Integration tests of the LwM2M core: codec golden vectors from the specifications, round-trip properties,
//! link format, registration parsing, object definitions and operations.

mod codecs;
mod registration;
