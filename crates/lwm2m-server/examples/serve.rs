//! Runs an LwM2M server: `cargo run -p lwm2m-server --example serve -- [UDP_PORT] [ADMIN_PORT]`.

use std::net::SocketAddr;

use lwm2m_server::{LwM2mServer, ServerConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let udp: u16 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5683);
    let admin: u16 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8090);
    let config = ServerConfig {
        coap_addr: SocketAddr::from(([0, 0, 0, 0], udp)),
        admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], admin))),
        ..ServerConfig::default()
    };
    let (server, join) = LwM2mServer::start(config).await?;
    tracing::info!("LwM2M server on {} (admin {:?})", server.coap_addr(), server.admin_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown();
    join.await?;
    Ok(())
}
