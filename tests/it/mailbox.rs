//! A real SMTP server on 127.0.0.1 for tests (mailin-embedded), recording
//! every message it accepts.

use std::{
    net::{IpAddr, TcpListener},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mailin_embedded::{Handler, Response, Server, SslConfig, response};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        self.data
            .lines()
            .find(|l| l.to_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

#[derive(Clone)]
struct Recorder {
    inbox: Arc<Mutex<Vec<Received>>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.inbox.lock().unwrap().push(Received {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        });
        response::OK
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }
}

/// A bound, not yet listening, port: connections to it are refused.
pub struct Reserved {
    socket: tokio::net::TcpSocket,
    pub port: u16,
}

impl Reserved {
    /// Starts the SMTP server on the reserved port (needs a tokio runtime).
    pub fn start(self) -> Mailbox {
        let listener = self.socket.listen(128).unwrap().into_std().unwrap();
        listener.set_nonblocking(false).unwrap();
        Mailbox::serve(listener)
    }
}

pub struct Mailbox {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

impl Mailbox {
    /// A port held for this test that refuses connections (SMTP is "down")
    /// until `Reserved::start` makes it listen. Bound once and handed over,
    /// so no other process can take it in between.
    pub fn reserve() -> Reserved {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        Reserved { socket, port }
    }

    /// A server on a port of its own, bound once and handed to the server.
    pub fn start() -> Mailbox {
        Mailbox::serve(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn serve(listener: TcpListener) -> Mailbox {
        let port = listener.local_addr().unwrap().port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let handler = Recorder {
            inbox: inbox.clone(),
            to: vec![],
            data: vec![],
        };
        let mut server = Server::new(handler);
        server
            .with_name("test.smtp")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_num_threads(64)
            .with_tcp_listener(listener);
        // One thread per connection; Ladder keeps a few connections open per worker.
        // The server blocks forever; it dies with the test process.
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Mailbox { port, inbox }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// Messages to one address.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.contains(address)))
            .collect()
    }

    /// Waits until at least `n` messages arrived (the server records on its own threads).
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let start = Instant::now();
        while self.messages().len() < n && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.messages()
    }
}
