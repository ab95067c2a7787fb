//! A TCP proxy that delivers what the server sends `delay` late (in order), and what the client
//! sends at once: a signalling path slower than the media path, as on a real network where the
//! signalling server is farther away than the other peer.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The running proxy; stops (and drops its connections) when dropped.
pub struct DelayProxy {
    /// `ws://` URL of the proxy.
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DelayProxy {
    /// Listen on 127.0.0.1 and forward every connection to `target`.
    pub async fn start(target: SocketAddr, delay: Duration) -> DelayProxy {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("ws://{}", l.local_addr().expect("proxy address"));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = l.accept().await {
                conns.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = inbound.into_split();
                    let (mut sr, mut sw) = outbound.into_split();
                    let up = async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        let _ = sw.shutdown().await;
                    };
                    // Server -> client: each chunk is written `delay` after it was read.
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                    let read = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = sr.read(&mut buf).await {
                            if n == 0
                                || tx
                                    .send((tokio::time::Instant::now(), buf[..n].to_vec()))
                                    .is_err()
                            {
                                break;
                            }
                        }
                    };
                    let write = async move {
                        while let Some((at, chunk)) = rx.recv().await {
                            tokio::time::sleep_until(at + delay).await;
                            if cw.write_all(&chunk).await.is_err() {
                                break;
                            }
                        }
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, read, write);
                });
            }
        });
        DelayProxy { url, task }
    }
}
