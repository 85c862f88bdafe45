//! Keeping a server's port while the server is down.
//!
//! Tests that stop a server and start it again on the same port (a MEF outage, a killed
//! replica) run beside other tests that start servers on port 0. While the port is free the
//! kernel may hand it to one of those, and the device under test then talks to another test's
//! MEF: a CA of the same name with another key, which the client rightly refuses ("a signature
//! in the server's certificate chain is invalid"). A [`PortHold`] keeps the port bound for the
//! length of the outage.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// A TCP socket bound to a server's address but not listening: a connection to it is refused
/// (RST), as to a stopped server, and Linux does not choose a bound port for a socket bound to
/// port 0 (`inet_csk_find_open_port` skips ports with a bound socket on the same address).
/// Drop it just before the server binds the address again.
#[derive(Debug)]
pub struct PortHold {
    _socket: Socket,
}

impl PortHold {
    /// Binds `addr`, retrying for up to 5 s while the stopped server's socket is still being
    /// released. Panics if the port cannot be held: another process took it in the moment it
    /// was free, and the test could not mean what it says.
    pub fn new(addr: SocketAddr) -> PortHold {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Self::bind(addr) {
                Ok(socket) => return PortHold { _socket: socket },
                Err(e) if Instant::now() < deadline => {
                    eprintln!("holding {addr}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot hold {addr} during the outage: {e}"),
            }
        }
    }

    fn bind(addr: SocketAddr) -> std::io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // The stopped server's accepted connections may linger in TIME_WAIT on this port;
        // SO_REUSEADDR lets the hold bind over them (as the server's own listener does).
        socket.set_reuse_address(true)?;
        socket.bind(&SockAddr::from(addr))?;
        Ok(socket)
    }
}

/// Shuts `mef` down and holds its port: for a test whose device must find the MEF unreachable
/// (connection refused), not another test's MEF.
pub fn shut_down_holding_port(mef: onem2m_mef::RunningMef) -> PortHold {
    let addr = mef.local_addr();
    mef.shutdown();
    PortHold::new(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_held_port_refuses_connections_until_released() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let hold = PortHold::new(addr);
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        drop(hold);
        // Released: the server can listen there again.
        TcpListener::bind(addr).unwrap();
    }
}
