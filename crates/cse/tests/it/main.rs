//! Integration tests of the embedded CSE: Mca over real HTTP, the differential suite against ACME, bad input,
//! persistence and notifications.

mod common;
mod scripts;

mod badinput;
mod differential;
mod embedded;
mod https;
