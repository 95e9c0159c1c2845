//! Serves the embedded CSE: `cargo run -p cse --example serve -- [addr] [data-dir]`
//! (default `127.0.0.1:8080`, in memory). Stop with Ctrl-C.

#![allow(clippy::print_stdout)] // a small program that says where it listens

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).map_or("127.0.0.1:8080", String::as_str);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let cfg = cse::CseConfig {
        data_dir: args.get(2).map(std::path::PathBuf::from),
        poa: vec![format!("http://{local}")],
        ..Default::default()
    };
    let c = cse::Cse::open(cfg).await?;
    println!("oneM2M CSE id-in / cse-in on http://{local} (admin originator CAdmin)");
    let closer = c.clone();
    cse::serve(c, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    closer.close().await;
    Ok(())
}
