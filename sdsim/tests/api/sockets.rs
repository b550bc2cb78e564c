//! Every connection the stack accepts sends small writes at once (`TCP_NODELAY`): gRPC
//! answers, WebSocket frames and admin pages are small, and with Nagle's algorithm a small
//! write waits for the peer to acknowledge the previous one. The servers run in this process,
//! so the test finds each accepted socket among its own descriptors and asks the kernel.

use crate::helpers::*;
use sdsim_protocols::Service;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type NameFn = unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32;

/// An address of descriptor `fd` (`getpeername` or `getsockname`), if it is an IPv4 socket.
fn address(fd: i32, call: NameFn) -> Option<SocketAddr> {
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` is a writable sockaddr_in of `len` bytes; a descriptor that is not a
    // socket only makes the call fail.
    let r = unsafe { call(fd, (&raw mut addr).cast(), &mut len) };
    if r != 0 || i32::from(addr.sin_family) != libc::AF_INET {
        return None;
    }
    let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(addr.sin_port))))
}

fn nodelay(fd: i32) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `on` is a writable c_int of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw mut on).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt(TCP_NODELAY) on fd {fd}");
    on != 0
}

/// The server side of `client`: this process's socket whose two ends are the client's,
/// swapped.
async fn accepted(client: &TcpStream) -> i32 {
    let (me, server) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    for _ in 0..100 {
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if address(fd, libc::getpeername) == Some(me)
                && address(fd, libc::getsockname) == Some(server)
            {
                return fd;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no accepted socket for {me}");
}

/// An HTTP/1.1 request on a kept-alive connection, answered before the socket is checked.
async fn http_get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 "), "{:?}", &buf[..n]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_connection_sends_small_writes_at_once() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let auth = s.running.addrs(Service::Auth);
    let gateway = s.running.addrs(Service::Gateway);

    // gRPC: once the server has sent its HTTP/2 settings, it has accepted the connection
    // and set its options.
    let mut grpc = TcpStream::connect(auth.grpc).await.unwrap();
    grpc.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut frame = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), grpc.read_exact(&mut frame))
        .await
        .expect("the server's settings")
        .unwrap();
    assert_eq!(frame[3], 4, "a SETTINGS frame: {frame:?}");
    let fd = accepted(&grpc).await;
    assert!(nodelay(fd), "auth's gRPC connection (fd {fd}) runs Nagle");

    let web = http_get(gateway.http, "/health").await;
    let fd = accepted(&web).await;
    assert!(nodelay(fd), "the gateway's connection (fd {fd}) runs Nagle");

    let admin = http_get(auth.http, "/health").await;
    let fd = accepted(&admin).await;
    assert!(nodelay(fd), "auth's admin connection (fd {fd}) runs Nagle");

    // A client socket is not what was checked: its own option is off.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&grpc);
    assert!(!nodelay(fd));
}
