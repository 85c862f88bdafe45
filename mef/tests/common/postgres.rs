//! A throw-away PostgreSQL server for tests: Debian's `postgresql` package (its binaries in
//! `pg_config --bindir`, else `/usr/lib/postgresql/*/bin`), a cluster `initdb`-ed in a temp
//! folder, listening on 127.0.0.1 on a free port and on a socket in that folder, trust
//! authentication for the `postgres` user. Stopped and deleted on drop. As root the server runs
//! as the unprivileged `postgres` user (PostgreSQL refuses to run as root).
//!
//! A test that needs it panics when PostgreSQL is not installed: it fails, never skips.
//!
//! ```ignore
//! let pg = PgServer::start();
//! let url = pg.create_database("mef"); // postgres://postgres@127.0.0.1:PORT/mef
//! pg.stop();   // pg_ctl stop -m fast: an outage
//! pg.resume(); // the same cluster, the same port
//! ```
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct PgServer {
    /// The temp folder: the cluster (`data`), its log (`log`) and its socket.
    pub dir: PathBuf,
    bindir: PathBuf,
    pub port: u16,
    /// Run the server's commands as this user (`postgres` when the tests run as root).
    run_as: Option<&'static str>,
}

/// Where the PostgreSQL server binaries are: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout). Panics when there is none.
pub fn pg_bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").is_file() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().expect(
        "PostgreSQL is not installed (no initdb in `pg_config --bindir` or \
         /usr/lib/postgresql/*/bin): install Debian's postgresql package (scripts/test.sh does)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn check(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PgServer {
    /// Creates and starts a cluster.
    pub fn start() -> PgServer {
        let bindir = pg_bindir();
        let run_as = is_root().then_some("postgres");
        let dir = std::env::temp_dir().join(format!(
            "onem2m-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(user) = run_as {
            check(
                "chown of the PostgreSQL test folder",
                Command::new("chown")
                    .arg(format!("{user}:"))
                    .arg(&dir)
                    .output(),
            );
        }
        let mut pg = PgServer {
            dir,
            bindir,
            port: 0,
            run_as,
        };
        let data = pg.dir.join("data");
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output();
        check("initdb", out);
        // A port picked by the OS and released: another process may take it in between, so a
        // failed start is retried on a new one.
        for attempt in 0.. {
            pg.port = free_port();
            if pg.try_start() {
                break;
            }
            assert!(attempt < 3, "PostgreSQL did not start: {}", pg.log());
        }
        pg
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn try_start(&self) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {}",
                self.port,
                self.dir.display()
            ))
            .arg("start")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The URL of database `db` for the `postgres` user over TCP.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL in database `db` (as the `postgres` superuser).
    pub fn execute(&self, db: &str, sql: &str) {
        let mut client = postgres::Client::connect(&self.url(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url(db)));
        client
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.execute("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended at once), keeping the
    /// cluster: an outage.
    pub fn stop(&self) {
        check(
            "pg_ctl stop",
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-w", "-m", "fast", "stop"])
                .output(),
        );
    }

    /// Starts the stopped server again, on the same port.
    pub fn resume(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.try_start() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not restart: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
