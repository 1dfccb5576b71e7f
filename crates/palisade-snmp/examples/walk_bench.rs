//! Micro benchmark: walks a large subtree N times with this crate's
//! `bulk_walk` and with net-snmp's `snmpbulkwalk -Cr<R>` against the same
//! local snmpd, over v2c and over v3 authPriv (SHA/AES-128).
//!
//! ```text
//! cargo run --release -p palisade-snmp --example walk_bench -- \
//!     [--iterations 20] [--max-repetitions 25] [--root 1.3.6.1.2.1]
//! ```
//!
//! It starts its own snmpd (Debian packages `snmpd` and `snmp`) on a free
//! port of 127.0.0.1 with a throw-away configuration, and stops it at the
//! end. snmpbulkwalk's times include its process start-up (and, for v3,
//! its engine discovery and password-to-key hashing); ours include engine
//! discovery only on the first v3 walk.

use std::error::Error;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_snmp::{AuthProtocol, Client, ClientConfig, Oid, PrivProtocol};

type BoxResult<T> = Result<T, Box<dyn Error>>;

const COMMUNITY: &str = "bench";
const USER: &str = "benchuser";
const AUTH_PASSWORD: &str = "benchauth123";
const PRIV_PASSWORD: &str = "benchpriv123";

struct Agent {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find_tool(name: &str) -> BoxResult<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} not found: apt-get install -y snmpd snmp").into())
}

fn start_agent() -> BoxResult<Agent> {
    let dir = std::env::temp_dir().join(format!("palisade-walk-bench-{}", std::process::id()));
    fs::create_dir_all(dir.join("persist"))?;
    let conf = dir.join("snmpd.conf");
    fs::write(
        &conf,
        format!(
            "rocommunity {COMMUNITY} 127.0.0.1\n\
             createUser {USER} SHA \"{AUTH_PASSWORD}\" AES \"{PRIV_PASSWORD}\"\n\
             rouser {USER} priv\n"
        ),
    )?;
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = fs::File::create(dir.join("snmpd.log"))?;
    let child = Command::new(find_tool("snmpd")?)
        .args(["-f", "-Lo", "-C", "-m", "", "-I", "-smux", "-c"])
        .arg(&conf)
        .arg(format!("udp:127.0.0.1:{port}"))
        .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
        .env("SNMPCONFPATH", &dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(Agent {
        child,
        dir,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

struct Stats {
    total: Duration,
    best: Duration,
    varbinds: usize,
}

fn report(name: &str, s: &Stats, n: u32) {
    let mean = s.total / n.max(1);
    println!(
        "{name:<34} {n:>4} walks  {:>6} varbinds/walk  mean {:>8.2} ms  best {:>8.2} ms  {:>9.0} varbinds/s",
        s.varbinds,
        mean.as_secs_f64() * 1e3,
        s.best.as_secs_f64() * 1e3,
        s.varbinds as f64 / mean.as_secs_f64().max(1e-9),
    );
}

async fn ours(client: &mut Client, root: &Oid, n: u32) -> BoxResult<Stats> {
    let mut s = Stats {
        total: Duration::ZERO,
        best: Duration::MAX,
        varbinds: 0,
    };
    for _ in 0..n {
        let t = Instant::now();
        let rows = client.bulk_walk(root).await?;
        let e = t.elapsed();
        s.total += e;
        s.best = s.best.min(e);
        s.varbinds = rows.len();
    }
    Ok(s)
}

fn theirs(tool: &Path, args: &[String], dir: &Path, n: u32) -> BoxResult<Stats> {
    let mut s = Stats {
        total: Duration::ZERO,
        best: Duration::MAX,
        varbinds: 0,
    };
    for _ in 0..n {
        let t = Instant::now();
        let out = Command::new(tool)
            .args(["-m", "", "-On", "-Ox", "-Ot"])
            .args(args)
            .env("SNMP_PERSISTENT_DIR", dir.join("persist-client"))
            .env("SNMPCONFPATH", dir.join("none"))
            .output()?;
        let e = t.elapsed();
        if !out.status.success() {
            return Err(format!(
                "snmpbulkwalk failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        s.total += e;
        s.best = s.best.min(e);
        s.varbinds = out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| l.first() == Some(&b'.'))
            .count();
    }
    Ok(s)
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> BoxResult<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad value for {name}").into()),
        None => Ok(default),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = arg(&args, "--iterations", 20)?;
    let reps: u32 = arg(&args, "--max-repetitions", 25)?;
    let root: Oid = arg(&args, "--root", "1.3.6.1.2.1".parse::<Oid>()?)?;

    let agent = start_agent()?;
    let mut cfg = ClientConfig::default();
    cfg.max_repetitions = reps;
    cfg.timeout = Duration::from_secs(2);

    let mut v2 = Client::v2c(agent.addr, COMMUNITY).await?;
    v2.set_config(cfg.clone());
    // Wait for the agent, then warm it up (its caches) with one walk.
    let ready = Instant::now();
    while v2.get(&["1.3.6.1.2.1.1.3.0".parse()?]).await.is_err() {
        if ready.elapsed() > Duration::from_secs(15) {
            return Err("snmpd did not start".into());
        }
    }
    v2.bulk_walk(&root).await?;

    let mut v3 = Client::v3(
        agent.addr,
        USER,
        Some((AuthProtocol::Sha1, AUTH_PASSWORD)),
        Some((PrivProtocol::Aes128, PRIV_PASSWORD)),
    )
    .await?;
    v3.set_config(cfg);

    let tool = find_tool("snmpbulkwalk")?;
    let host = format!("udp:{}", agent.addr);
    let cr = format!("-Cr{reps}");
    let root_s = root.to_string();
    let v2_args: Vec<String> = ["-v2c", "-c", COMMUNITY, &cr, &host, &root_s]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let v3_args: Vec<String> = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        USER,
        "-a",
        "SHA",
        "-A",
        AUTH_PASSWORD,
        "-x",
        "AES",
        "-X",
        PRIV_PASSWORD,
        &cr,
        &host,
        &root_s,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    println!("walking {root} with max-repetitions {reps}, {n} times each");
    report(
        "palisade-snmp v2c bulk_walk",
        &ours(&mut v2, &root, n).await?,
        n,
    );
    report(
        "net-snmp snmpbulkwalk v2c",
        &theirs(&tool, &v2_args, &agent.dir, n)?,
        n,
    );
    report(
        "palisade-snmp v3 authPriv",
        &ours(&mut v3, &root, n).await?,
        n,
    );
    report(
        "net-snmp snmpbulkwalk v3 authPriv",
        &theirs(&tool, &v3_args, &agent.dir, n)?,
        n,
    );
    Ok(())
}
