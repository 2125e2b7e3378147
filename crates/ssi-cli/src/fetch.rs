//! `ssi data fetch`: downloads the public S3-Rec datasets, checks their sha256, and stores them
//! atomically in a cache folder. Only for real users: tests point `--base-url` at 127.0.0.1.

use anyhow::{Context, Result, bail};
use clap::Args;
pub use ssi_data::dataset::sha256_hex;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The files published with the S3-Rec paper (repository RUCAIBox/CIKM2020-S3Rec, folder data/).
pub const DEFAULT_BASE_URL: &str =
    "https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/master/data/";

use ssi_data::published::KNOWN;

/// The published files are 1-2 MB; the checksum decides, this only bounds a broken server.
pub const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

#[derive(Args)]
pub struct FetchArgs {
    /// beauty, toys or sports.
    name: String,
    /// Cache folder (default: $SSI_CACHE, else $XDG_CACHE_HOME/ssi, else ~/.cache/ssi).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Where the files are served from.
    #[arg(long, default_value = DEFAULT_BASE_URL)]
    base_url: String,
    /// Replace a file of the dataset's name in the cache folder that is not the published one.
    #[arg(long)]
    force: bool,
}

pub fn cache_dir(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    // An empty variable counts as unset (as the XDG spec says), not as the working folder.
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var("SSI_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = var("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("ssi");
    }
    let home = var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("ssi")
}

/// The most seconds one download (each redirect's request included) may take: a dataset file
/// is 1–2 MB.
const DEADLINE_S: u64 = 600;
const MAX_REDIRECTS: usize = 5;

/// The response to `url` after at most [`MAX_REDIRECTS`] redirects, each to an http(s)
/// address with a host (a `file:` or `data:` target is refused by name, not fetched).
fn get_following_redirects(agent: &ureq::Agent, url: &str) -> Result<ureq::Response> {
    let mut at = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let resp = agent.get(&at).call().with_context(|| {
            format!(
                "download of {url} failed (a read waits at most 60 s, the whole download {DEADLINE_S} s); nothing was written"
            )
        })?;
        if !(300..400).contains(&resp.status()) {
            return Ok(resp);
        }
        let Some(location) = resp.header("Location") else {
            bail!(
                "{at} answered {} without a Location to go to; nothing was written",
                resp.status()
            );
        };
        let next = url::Url::parse(&at)
            .and_then(|base| base.join(location))
            .with_context(|| format!("{at} redirects to {location:?}, not an address"))?;
        if !matches!(next.scheme(), "http" | "https") || next.host_str().is_none() {
            bail!(
                "{at} redirects to {next}: only http and https addresses are followed; nothing was written"
            );
        }
        at = next.to_string();
    }
    bail!("{url}: more than {MAX_REDIRECTS} redirects; nothing was written")
}

/// Downloads `url` into `dest` if the checksum matches; `dest` is never left half-written.
pub fn download_verified(url: &str, sha256: &str, dest: &Path) -> Result<()> {
    // A server that accepts the connection and never answers, or streams without end, must
    // not hang the command or fill the memory.
    // The whole download has a deadline too: a server that trickles a byte a minute passes
    // every read timeout. Redirects are followed here, to http(s) addresses only.
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(std::time::Duration::from_secs(60))
        .timeout(std::time::Duration::from_secs(DEADLINE_S))
        .redirects(0)
        .build();
    let resp = get_following_redirects(&agent, url)?;
    let total: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    if let Some(t) = total.filter(|&t| t > MAX_DOWNLOAD_BYTES) {
        bail!(
            "{url} announces {t} bytes: more than {MAX_DOWNLOAD_BYTES} bytes, more than a dataset file may have; nothing was written"
        );
    }
    let pb = crate::ui::bar(total.unwrap_or(0), "downloading");
    let mut reader = resp.into_reader();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| {
                format!(
                    "reading {url} (a read waits at most 60 s, the whole download {DEADLINE_S} s); nothing was written"
                )
            })?;
        if n == 0 {
            break;
        }
        if (bytes.len() + n) as u64 > MAX_DOWNLOAD_BYTES {
            bail!(
                "{url} sent more than {MAX_DOWNLOAD_BYTES} bytes, more than a dataset file may have; nothing was written"
            );
        }
        bytes.extend_from_slice(&buf[..n]);
        pb.set_position(bytes.len() as u64);
    }
    pb.finish_and_clear();
    let got = sha256_hex(&bytes);
    if got != sha256 {
        bail!(
            "checksum mismatch for {url}: expected sha256 {sha256}, got {got} ({} bytes); nothing was written",
            bytes.len()
        );
    }
    ssi_data::dataset::write_atomic(dest, &bytes)?;
    Ok(())
}

pub fn run(a: FetchArgs) -> Result<()> {
    let known = KNOWN
        .iter()
        .find(|k| k.name.eq_ignore_ascii_case(&a.name))
        .with_context(|| {
            format!(
                "unknown dataset {:?}; known: {}",
                a.name,
                KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
            )
        })?;
    let dir = cache_dir(a.cache);
    if dir.exists() && !dir.is_dir() {
        bail!(
            "the cache folder {} is a file: give a folder with --cache (or SSI_CACHE)",
            dir.display()
        );
    }
    // A link to nothing: checked before the download, which could not be stored there.
    if let (Ok(link), false) = (std::fs::read_link(&dir), dir.exists()) {
        bail!(
            "the cache folder {} is a link to nothing ({}): create that folder, or give another with --cache (or SSI_CACHE)",
            dir.display(),
            link.display()
        );
    }
    let dest = dir.join(format!("{}.txt", known.name));
    if dest.exists() {
        // A file the user did not name: read only when it is a regular file (a pipe would hang
        // the command), and no more of it than a download may hold.
        if !dest.is_file() {
            bail!(
                "{} is in the cache but is not a regular file (a folder, device or pipe): move it away",
                dest.display()
            );
        }
        let bytes = match ssi_data::dataset::read_bytes_max(&dest, MAX_DOWNLOAD_BYTES) {
            Ok(b) => b,
            Err(e) if !a.force => bail!(
                "{e}; it is not the published {}.txt: move it away, or pass --force to replace it with the download",
                known.name
            ),
            Err(_) => Vec::new(),
        };
        if sha256_hex(&bytes) == known.sha256 {
            outln!("{} (already present, checksum ok)", dest.display());
            return Ok(());
        }
        // Downloads land whole or not at all, so this is someone's own file (the cache may be
        // a data folder): replaced only when asked.
        if !a.force {
            bail!(
                "{} exists and is not the published {}.txt (its SHA-256 differs): move it away, or pass --force to replace it with the download",
                dest.display(),
                known.name
            );
        }
        errln!(
            "note: {} is not the published file: replacing it (--force)",
            dest.display()
        );
    }
    let url = format!("{}/{}", a.base_url.trim_end_matches('/'), known.remote);
    download_verified(&url, known.sha256, &dest)?;
    outln!("{}", dest.display());
    Ok(())
}
