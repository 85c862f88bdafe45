//! ureq's connector chain: TCP, then TLS from a [`TlsStack`], with the connection's counters.

use super::stack::{TlsSession, TlsStack, WireSocket};
use crate::error::Error;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, TcpConnector, Transport,
    TransportAdapter,
};

/// Counters shared by the connector and the connection.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) handshakes: AtomicU32,
    /// Each distinct certificate chain a server presented on this connection's handshakes.
    pub(super) server_chains: std::sync::Mutex<Vec<Vec<CertificateDer<'static>>>>,
    /// The cipher suite of the latest handshake, when the stack reports it.
    pub(super) cipher_suite: std::sync::Mutex<Option<&'static str>>,
    pub(super) bytes_written: AtomicU64,
    pub(super) bytes_read: AtomicU64,
}

/// A crate error travelling through ureq (`ureq::Error::Other`) to be recovered as it was.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Carried(pub(super) Error);

pub(super) fn carry(e: Error) -> ureq::Error {
    ureq::Error::Other(Box::new(Carried(e)))
}

/// The TCP step: ureq's [`TcpConnector`], with its failures marked as connect failures.
#[derive(Debug, Default)]
pub(super) struct TcpStep(TcpConnector);

impl Connector<()> for TcpStep {
    type Out = <TcpConnector as Connector<()>>::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        let address = details
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        self.0.connect(details, chained).map_err(|e| match e {
            ureq::Error::Timeout(_) => carry(Error::Timeout {
                phase: format!("TCP connect to {address}"),
            }),
            ureq::Error::Io(source) => carry(Error::Connect { address, source }),
            other => other,
        })
    }
}

/// The TLS step: runs the [`TlsStack`] over the TCP transport, counting handshakes.
#[derive(Debug)]
pub(super) struct TlsStep {
    pub(super) stack: Arc<dyn TlsStack>,
    pub(super) name: ServerName<'static>,
    pub(super) tls_timeout: Duration,
    pub(super) stats: Arc<Stats>,
}

impl<In: Transport> Connector<In> for TlsStep {
    type Out = TlsTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        let Some(tcp) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() {
            // EST is https only (RFC 7030 3.3); EstUri guarantees it, this is the last guard.
            return Err(ureq::Error::TlsRequired);
        }
        let mut wire = WireSocket {
            inner: TransportAdapter::new(tcp.boxed(), details.current_time.clone()),
            stats: self.stats.clone(),
        };
        wire.set_timeout(NextTimeout {
            after: self.tls_timeout.into(),
            reason: ureq::Timeout::Connect,
            ..NextTimeout::default()
        });
        self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
        let session = self.stack.handshake(&self.name, wire).map_err(carry)?;
        *self
            .stats
            .cipher_suite
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = session.cipher_suite();
        if let Some(chain) = session.peer_certificates() {
            let mut seen = self
                .stats
                .server_chains
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !seen.contains(&chain) {
                seen.push(chain);
            }
        }
        Ok(Some(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            session,
        }))
    }
}

/// The ureq transport over a [`TlsSession`].
#[derive(Debug)]
pub(super) struct TlsTransport {
    buffers: LazyBuffers,
    session: Box<dyn TlsSession>,
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> std::result::Result<(), ureq::Error> {
        self.session.wire().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.session.write_all(output)?;
        self.session.flush()?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        self.session.wire().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.session.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.session.wire().inner.get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
