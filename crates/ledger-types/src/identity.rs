//! Identity references: a creator or endorser named by the hash of its full identity instead of by its
//! certificate.
//!
//! A full identity (`SerializedIdentity{msp_id, cert_der}`, ~450 bytes with an Ed25519 certificate) is more
//! than half of a typical transaction; every byte of it is hashed, signed, sent to five nodes and written to
//! eight files. Once a transaction carrying an identity in full is committed valid, the identity is
//! *registered*: every peer records it in its world state, under the reserved namespace [`NAMESPACE`], as
//! part of that block's commit (so it is replicated, rebuilt from blocks and audited like any other state).
//! Transactions of **later blocks** may then name it by a reference, `SerializedIdentity{msp_id, id_hash}`
//! (~45 bytes), where `id_hash` is the SHA-256 of the full encoded identity. Validation resolves a reference
//! against the registrations of earlier blocks only, so every peer reaches the same verdict, whatever it has
//! cached. The signed bytes are the bytes as sent (with the reference), and the hash binds the reference to
//! exactly one certificate.
//!
//! A node that cannot resolve a reference (not yet registered, or an orderer that has not seen it since it
//! started) refuses the request with a message containing [`UNKNOWN_REFERENCE`]; the SDK then sends the
//! identity in full again.

use crate::hash::Hash32;
use crate::proto::SerializedIdentity;
use crate::wire::{envelope_header, only_field};
use prost::Message;

/// The state namespace of registered identities: key = hex [`Hash32`] of the full identity, value = the full
/// encoded identity. Contract names may not start with `_`, so no contract can read or write it.
pub const NAMESPACE: &str = "_identities";

/// Part of every error message about a reference that could not be resolved (clients look for it).
pub const UNKNOWN_REFERENCE: &str = "unknown identity reference";

/// How an encoded identity names its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// It carries the certificate.
    Full,
    /// It is a reference to the full identity with this hash.
    Reference(Hash32),
}

/// Tells a full identity from a reference by reading its fields in place. Bytes that are not a well-formed
/// reference count as [`Form::Full`]: they are then validated (and refused) as full identities.
pub fn form(bytes: &[u8]) -> Form {
    let cert = only_field(bytes, 2);
    match only_field(bytes, 3) {
        Ok(Some(h)) if matches!(cert, Ok(None)) || matches!(cert, Ok(Some(c)) if c.is_empty()) => {
            Hash32::from_slice(h).map_or(Form::Full, Form::Reference)
        }
        _ => Form::Full,
    }
}

/// The creator bytes of an encoded endorser-transaction envelope (`Header.creator`), read in place; `None`
/// for other or unusual shapes.
pub fn envelope_creator(envelope: &[u8]) -> Option<&[u8]> {
    only_field(envelope_header(envelope).ok()??, 5).ok()?
}

/// The hash a reference to the full identity `full` carries.
pub fn hash_of(full: &[u8]) -> Hash32 {
    Hash32::of(full)
}

/// The state key of a registered identity.
pub fn key(hash: &Hash32) -> String {
    hash.to_hex()
}

/// The reference standing for the full encoded identity `full`; `None` if `full` is not a full identity.
pub fn reference(full: &[u8]) -> Option<Vec<u8>> {
    let id = SerializedIdentity::decode(full).ok()?;
    if id.cert_der.is_empty() || !id.id_hash.is_empty() {
        return None;
    }
    Some(
        SerializedIdentity { msp_id: id.msp_id, cert_der: Vec::new(), id_hash: hash_of(full).0.to_vec() }
            .encode_to_vec(),
    )
}

/// The MSP id an encoded identity (full or reference) states, if it decodes.
pub fn msp_id(bytes: &[u8]) -> Option<String> {
    SerializedIdentity::decode(bytes).ok().map(|i| i.msp_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::serialize_identity;

    #[test]
    fn a_reference_names_its_full_identity() {
        let full = serialize_identity("Org1MSP", &[7u8; 300]);
        assert_eq!(form(&full), Form::Full);
        let r = reference(&full).expect("a full identity has a reference");
        assert!(r.len() < 50, "{} bytes", r.len());
        assert_eq!(form(&r), Form::Reference(hash_of(&full)));
        assert_eq!(msp_id(&r).as_deref(), Some("Org1MSP"));
        assert_eq!(reference(&r), None, "no reference to a reference");
    }

    #[test]
    fn the_creator_is_found_in_an_envelope_as_a_decode_would() {
        use crate::proto::{Envelope, Header, Proposal, TxPayload};
        let creator = serialize_identity("Org1MSP", &[9u8; 200]);
        let header = Header { creator: creator.clone(), tx_id: "t".into(), ..Default::default() };
        let proposal = Proposal { header: Some(header), input: None }.encode_to_vec();
        let payload =
            TxPayload { header_type: 0, proposal_bytes: proposal, ..Default::default() }.encode_to_vec();
        let env = Envelope { payload, signature: vec![1; 64] }.encode_to_vec();
        assert_eq!(envelope_creator(&env), Some(creator.as_slice()));
        assert_eq!(envelope_creator(&env[..env.len() - 1]), None, "truncated");
        assert_eq!(envelope_creator(b"junk"), None);
    }

    #[test]
    fn malformed_or_mixed_identities_are_not_references() {
        let both = SerializedIdentity { msp_id: "A".into(), cert_der: vec![1], id_hash: vec![2; 32] }
            .encode_to_vec();
        assert_eq!(form(&both), Form::Full);
        let short =
            SerializedIdentity { msp_id: "A".into(), cert_der: vec![], id_hash: vec![2; 31] }.encode_to_vec();
        assert_eq!(form(&short), Form::Full);
        for junk in [&[0xffu8, 0xff][..], &[0x1a, 0x20, 1, 2], &[0x08, 0x01], &[]] {
            assert_eq!(form(junk), Form::Full, "{junk:?}");
        }
    }
}
