//! Where a command's dataset comes from: a file, or the embedded synthetic shop.

use anyhow::Result;
use ssi_data::synth::{SynthConfig, generate};
use ssi_data::{Dataset, LoadReport};
use std::path::Path;

/// Loads `path`, or generates the default synthetic shop when no file is given.
pub fn load(path: Option<&Path>, quiet: bool) -> Result<Dataset> {
    match path {
        Some(p) => {
            let (ds, report) = Dataset::load(p)?;
            if !quiet {
                crate::ui::report_skips(&report);
            }
            Ok(ds)
        }
        None => {
            if !quiet {
                errln!("note: no --data given: using the embedded synthetic shop (seed 42)");
            }
            let _ = LoadReport::default();
            Ok(generate(&SynthConfig::default())?)
        }
    }
}

/// The dataset run `run` was trained on: `given` (`--data`) when set, else the file its
/// `config.json` records. A recorded file that has gone is named as the run's, with the way out.
pub fn load_for_run(
    run: &Path,
    recorded: Option<&Path>,
    given: Option<&Path>,
    quiet: bool,
) -> Result<Dataset> {
    if let Some(p) = given {
        return load(Some(p), quiet);
    }
    if let Some(p) = recorded {
        readable_again(
            Some(p),
            &format!("the dataset {} was trained on", run.display()),
        )?;
    }
    if let Some(p) = recorded
        && std::fs::metadata(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        anyhow::bail!(
            "{}: the dataset {} was trained on (recorded in {}) is not there any more: give its new path with --data",
            p.display(),
            run.display(),
            run.join("config.json").display()
        );
    }
    load(recorded, quiet)
}

/// Refuses a dataset path that is there but not a file (a pipe such as `/dev/stdin` or
/// `<(cmd)`, a device), which reads differently, or not at all, a second time; `what` names it.
pub fn readable_again(path: Option<&Path>, what: &str) -> Result<()> {
    if let Some(p) = path
        && let Ok(meta) = std::fs::metadata(p)
        && !meta.is_file()
    {
        anyhow::bail!(
            "{}: {what} is not a file but {}, which cannot be read again: save it to a file and pass that with --data",
            p.display(),
            if meta.is_dir() {
                "a folder"
            } else {
                "a pipe or device"
            }
        );
    }
    Ok(())
}

/// The burn device of `--device`: cpu (flex) or wgpu.
pub fn device(name: &str) -> Result<burn::tensor::Device> {
    match name {
        "cpu" | "flex" => Ok(burn::tensor::Device::flex()),
        "wgpu" | "gpu" => wgpu_device(),
        other => anyhow::bail!("unknown device {other:?} (cpu, wgpu; flex and gpu name them too)"),
    }
}

/// The `--shapes` value (auto, exact, bucketed; clap has checked it).
pub fn shapes(name: &str) -> ssi_models::common::Shapes {
    use ssi_models::common::Shapes;
    match name {
        "exact" => Shapes::Exact,
        "bucketed" => Shapes::Bucketed,
        _ => Shapes::Auto,
    }
}

#[cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]
fn wgpu_device() -> Result<burn::tensor::Device> {
    Ok(burn::tensor::Device::wgpu(Default::default()))
}

#[cfg(not(any(feature = "wgpu", feature = "wgpu-unfused")))]
fn wgpu_device() -> Result<burn::tensor::Device> {
    anyhow::bail!(
        "this ssi was built without GPU support: rebuild with `cargo build --release -p ssi-cli --features wgpu`"
    )
}

/// The bytes of a bundle file (`ssi export`'s `bundle.ssib`): a folder is named with the file it
/// likely holds, and a file that does not begin as a bundle is refused on its first bytes (a
/// device like `/dev/zero` is not read to the size limit first). The file is opened once, so a
/// pipe (`--bundle <(…)`, `/dev/stdin`) reads as a file does.
pub fn read_bundle(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    if path.is_dir() {
        let inside = path.join(ssi_bundle::FILE_NAME);
        if inside.exists() {
            anyhow::bail!(
                "{} is a folder: give the bundle file in it, {}",
                path.display(),
                inside.display()
            );
        }
        if path.join("config.json").exists() {
            anyhow::bail!(
                "{} is a training run, not a bundle: export it first (`ssi export --checkpoint {} --out DIR`), then give DIR/{}",
                path.display(),
                path.display(),
                ssi_bundle::FILE_NAME
            );
        }
        anyhow::bail!(
            "{} is a folder without a bundle ({} is written by `ssi export`)",
            path.display(),
            ssi_bundle::FILE_NAME
        );
    }
    let io = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    (&mut file).take(4).read_to_end(&mut bytes).map_err(io)?;
    if bytes.as_slice() != ssi_bundle::MAGIC {
        anyhow::bail!(
            "{}: not an SSI bundle (the file does not start with \"SSIB\"; `ssi export` writes {})",
            path.display(),
            ssi_bundle::FILE_NAME
        );
    }
    let max = ssi_bundle::MAX_BYTES as u64;
    file.take(max - 4 + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        anyhow::bail!(
            "{}: larger than {} MiB: not a bundle `ssi export` writes",
            path.display(),
            max >> 20
        );
    }
    Ok(bytes)
}

/// Refuses a path that a run would record in its `config.json` (a dataset, a teacher, a
/// pipeline's folder) when it is not valid UTF-8, as given or resolved: JSON holds text, and
/// the run would fail when it writes that file, after training. `what` names the option.
pub fn recordable(what: &str, path: &std::path::Path) -> Result<()> {
    let resolved = path.canonicalize().ok();
    for p in std::iter::once(path).chain(resolved.as_deref()) {
        if p.to_str().is_none() {
            anyhow::bail!(
                "{what} {}: the path is not valid UTF-8, and runs record it in their config.json, \
                 which holds text: rename it, or reach it through a link of a UTF-8 name",
                p.display()
            );
        }
    }
    Ok(())
}
