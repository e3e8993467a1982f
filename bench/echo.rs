//! The endpoints benchmark's two tools, standard library only (built with
//! `rustc -O` by `bench/endpoints.sh`, outside the workspace):
//!
//! ```text
//! echo serve PORT
//!     a minimal HTTP/1.1 upstream on 127.0.0.1: POST answers its body back,
//!     GET (SageMaker's /ping) answers 200; keep-alive, a thread per connection
//! echo load HOST:PORT PATH CONNS SECONDS RATE [HEADER]...
//!     CONNS keep-alive connections POST a small JSON body to PATH for
//!     SECONDS. RATE 0: each connection sends its next request as soon as
//!     the last is answered (closed loop). RATE > 0: RATE requests/s in all,
//!     paced, and a request's latency counts from when it was due, so a slow
//!     answer that delays the next request is not hidden.
//!     Prints: requests/s, p50, p99, p99.9 (ms) and errors (answers not 200).
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(arg(2).parse().unwrap_or_else(|_| usage())),
        Some("load") => load(
            &arg(2),
            &arg(3),
            arg(4).parse().unwrap_or_else(|_| usage()),
            arg(5).parse().unwrap_or_else(|_| usage()),
            arg(6).parse().unwrap_or_else(|_| usage()),
            &args[7..],
        ),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: echo serve PORT | echo load HOST:PORT PATH CONNS SECONDS RATE [HEADER]...");
    std::process::exit(2)
}

/// Reads one HTTP/1.1 message with a `content-length` body: its first line
/// and its body; `None` when the connection closed.
fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some((first, body)))
}

fn serve(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let Ok(mut writer) = stream.try_clone() else { return };
            let mut reader = BufReader::new(stream);
            while let Ok(Some((first, body))) = read_message(&mut reader) {
                let body = if first.starts_with("GET") { b"{}".to_vec() } else { body };
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body);
                if writer.write_all(&out).is_err() {
                    break;
                }
            }
        });
    }
}

fn load(addr: &str, path: &str, conns: usize, seconds: f64, rate: f64, headers: &[String]) {
    let body = br#"[[24, 70.5, 3]]"#;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(seconds);
    // paced: each connection sends one request per interval, the connections spread over it
    let interval = (rate > 0.0).then(|| Duration::from_secs_f64(conns as f64 / rate));
    let workers: Vec<_> = (0..conns)
        .map(|i| {
            let (request, addr) = (request.clone(), addr.to_owned());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).expect("connect");
                let _ = stream.set_nodelay(true);
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                let mut due = start + interval.map_or(Duration::ZERO, |iv| iv.mul_f64(i as f64 / conns as f64));
                loop {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if interval.is_none() {
                        due = Instant::now();
                    }
                    if due >= end {
                        break;
                    }
                    if writer.write_all(&request).is_err() {
                        errors += 1;
                        break;
                    }
                    match read_message(&mut reader) {
                        Ok(Some((status, _))) => {
                            if !status.contains(" 200 ") {
                                errors += 1;
                            }
                            latencies.push(due.elapsed());
                        }
                        _ => {
                            errors += 1;
                            break;
                        }
                    }
                    if let Some(iv) = interval {
                        due += iv;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.join().expect("load thread");
        latencies.extend(l);
        errors += e;
    }
    latencies.sort();
    let q = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "requests/s {:>8.0}   p50 {:>7.2} ms   p99 {:>7.2} ms   p99.9 {:>7.2} ms   errors {errors}",
        latencies.len() as f64 / seconds,
        q(0.50),
        q(0.99),
        q(0.999)
    );
}
