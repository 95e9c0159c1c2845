//! Integration tests of `fabric-protos`: the messages and hashes checked against Fabric's own JavaScript
//! bindings (npm `@hyperledger/fabric-protos`, installed by `scripts/test.sh` under `target/peers/fabric`;
//! a missing package fails the tests).

mod config_check;
mod cross_check;
mod node;
mod services;
