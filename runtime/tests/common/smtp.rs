//! A minimal SMTP receiver on an ephemeral local port: enough of RFC 5321
//! (and AUTH PLAIN) for lettre to deliver. Each accepted message is one
//! string: `AUTH <user> <password>` if the client authenticated, one
//! `RCPT <addr>` line per recipient, then the message as sent.

use base64::Engine;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub type Mails = Arc<Mutex<Vec<String>>>;

pub async fn server() -> (u16, Mails) {
    let got: Mails = Arc::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 localhost ESMTP test\r\n").await.unwrap();
                let mut line = String::new();
                let mut data = false;
                let mut mail = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if data {
                        if line == ".\r\n" {
                            data = false;
                            g.lock().unwrap().push(std::mem::take(&mut mail));
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            mail.push_str(&line);
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") {
                        b"250-localhost\r\n250 AUTH PLAIN\r\n"
                    } else if cmd.starts_with("HELO") {
                        b"250 localhost\r\n"
                    } else if cmd.starts_with("AUTH PLAIN ") {
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(line["AUTH PLAIN ".len()..].trim())
                            .unwrap_or_default();
                        let parts: Vec<String> = raw
                            .split(|b| *b == 0)
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect();
                        mail.push_str(&format!("AUTH {}\n", parts[1..].join(" ")));
                        b"235 2.7.0 authenticated\r\n"
                    } else if cmd.starts_with("RCPT TO") {
                        mail.push_str(&format!("RCPT {}", line.trim_start_matches("RCPT TO:")));
                        b"250 ok\r\n"
                    } else if cmd.starts_with("DATA") {
                        data = true;
                        b"354 end with .\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, got)
}
