use crate::generated;
use ledger_types::tx::Signer;
use network::layout::{NodeConfig, NodeRole, load_identity};
use network::{IdentitySigner, generate, unix_now};
use peer::identity::Identities;
use rand::SeedableRng;

#[test]
fn generates_a_loadable_network() {
    let (_tmp, dir, net) = generated(1);
    assert!(dir.exists());
    assert!(dir.genesis_file("iot").is_file());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir.root().join("nodes")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            let node = NodeConfig::load(&p).unwrap();
            assert_eq!(node.channel.channel_id, "iot");
            assert_eq!(node.tls.ca_pems.len(), 3, "trusts the TLS CAs of all three orgs");
            let ids = node.identities().unwrap();
            let signer = IdentitySigner::new(node.identity);
            let id = ids.validate(signer.serialized_identity(), unix_now().as_secs()).unwrap();
            assert_eq!(id.role, if node.config.role == NodeRole::Peer { "peer" } else { "orderer" });
            let sig = signer.sign(b"block");
            assert!(ids.verify(&id, b"block", &sig));
            assert!(!ids.verify(&id, b"other", &sig));
            names.push(node.config.name);
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "orderer0.ipechain.local",
            "orderer1.ipechain.local",
            "orderer2.ipechain.local",
            "peer0.org1.ipechain.local",
            "peer0.org2.ipechain.local"
        ]
    );
    assert_eq!(net.orderers.len(), 3);
    // The genesis block's configuration: each org's nodes as its anchor peers or orderer endpoints, the
    // consenters with their signing identities.
    let (_, channel) = network::layout::read_genesis(&dir.genesis_file("iot")).unwrap();
    let endpoints = |nodes: &[network::NodeSettings], msp: &str| -> Vec<String> {
        nodes.iter().filter(|n| n.msp_id == msp).map(|n| n.endpoint()).collect()
    };
    let orderer_org = &channel.orderer_orgs[0];
    assert_eq!(orderer_org.peer_endpoints, endpoints(&net.orderers, &orderer_org.msp_id));
    assert_eq!(orderer_org.peer_endpoints.len(), 3);
    for org in &channel.orgs {
        assert_eq!(org.peer_endpoints, endpoints(&net.peers, &org.msp_id), "{}", org.msp_id);
    }
    assert_eq!(channel.consenters.len(), 3);
    // Users load too, and a user is a client.
    let user = load_identity(
        "Org2MSP",
        &dir.crypto_dir().join("peerOrganizations/org2.ipechain.local/users/User1@org2.ipechain.local"),
    )
    .unwrap();
    assert_eq!(user.role().ou(), "client");
}

#[test]
fn refuses_to_overwrite_and_foreign_identities_fail() {
    let (_tmp, dir, net) = generated(2);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let err = generate(&dir, &net, unix_now(), &mut rng).unwrap_err();
    assert!(err.to_string().contains("already holds a network"), "{err}");

    let (_tmp2, other, _) = generated(4);
    let mine = NodeConfig::load(&dir.node_config("peer0.org1.ipechain.local")).unwrap();
    let theirs = NodeConfig::load(&other.node_config("peer0.org1.ipechain.local")).unwrap();
    let ids = mine.identities().unwrap();
    let foreign = IdentitySigner::new(theirs.identity);
    let e = ids.validate(foreign.serialized_identity(), unix_now().as_secs()).unwrap_err();
    assert!(!e.is_empty());
}

#[test]
fn ops_listen_is_a_top_level_key_written_before_the_tables_and_read_back() {
    let (tmp, dir, _) = generated(1);
    let mut c = NodeConfig::read(&dir.node_config("peer0.org1.ipechain.local")).unwrap();
    assert_eq!(c.ops_listen, None, "generated files name no operations listener");
    assert!(!c.endorsers.is_empty(), "the peer's file has an [endorsers] table");
    c.ops_listen = Some("127.0.0.1:9443".parse().unwrap());
    let text = toml::to_string(&c).unwrap();
    let key = text.find("ops_listen = \"127.0.0.1:9443\"").unwrap_or_else(|| panic!("{text}"));
    assert!(text.find("\n[").is_none_or(|table| key < table), "{text}");
    let path = tmp.path().join("peer-with-ops.toml");
    std::fs::write(&path, &text).unwrap();
    assert_eq!(NodeConfig::read(&path).unwrap(), c);
}
