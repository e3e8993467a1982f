//! An AWS API emulator (`moto_server`) on a free loopback port, for tests of
//! AWS-mode code. `MOTO_SERVER` names the executable (the test command
//! installs moto into its own virtual environment); the process is killed
//! when the guard drops.

use std::process::{Child, Command, Stdio};

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub url: String,
}

impl Moto {
    /// Starts the emulator and waits until it accepts connections; panics
    /// with an installation hint when it cannot (this is test support).
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (install with `pip install 'moto[server]'`): {e}"));
        // Owned by the guard from here on, so it is killed and reaped even on panic.
        let moto = Self { child, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return moto;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start on port {port}");
    }

    /// Client settings for the emulator (static test credentials, path style).
    pub fn config(&self) -> crate::S3Config {
        crate::S3Config {
            endpoint: Some(self.url.clone()),
            region: Some("us-east-1".into()),
            credentials: Some(("testing".into(), "testing".into())),
            force_path_style: true,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
