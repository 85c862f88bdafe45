//! The test kit of the onem2m-est workspace (not published): one test PKI, the in-process MEF
//! fixture, the scripted EST server with its procedure server, the hostile-MEF harness, and
//! `openssl s_server` as an interop peer, a [`PortHold`] for servers stopped and restarted on
//! their port, and the rule for tests that need an external tool ([`require_tool`]). Used by the core's integration tests and
//! benchmark, the CLI's and the C ABI crate's tests, and the fuzz seed generator.
//!
//! The kit depends on the core (`onem2m-est`) and the MEF (`onem2m-mef`); its users take it as
//! a dev-dependency only, so there is no cycle among normal dependencies.

#![forbid(unsafe_code)]

pub mod cli;
pub mod hostile;
pub mod mef;
pub mod net;
pub mod openssl;
pub mod pki;
pub mod process;
pub mod server;
pub mod softhsm;
pub mod tools;

pub use mef::{MefFixture, CSE_ID};
pub use net::PortHold;
pub use pki::{Eku, Manufacturer, ServerIdentity, TestCa, TestKey};
pub use tools::{require, require_tool};
