//! `ssi reproduce --jobs N`: trains independent stages of the pipeline at the same time.
//!
//! Each stage runs as `ssi reproduce <the same arguments> --stage NAME` in a process of its own,
//! not a thread: a process trains exactly as a sequential run does (its own backend and RNG
//! state), and one process keeps about one core busy, since most of burn flex's element-wise
//! kernels are single-threaded (two BERT4Rec processes on 2 cores: 1.85x the throughput of one,
//! `docs/results/bench.md`). A stage starts once every run it depends on has finished.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A stage to train: its run folder name under `out`, and the run folders it needs finished.
pub struct Task {
    pub name: String,
    pub deps: Vec<String>,
}

/// A stage's process gets SIGTERM when this one ends however it ends (`kill`, a CI timeout), so
/// no trainer goes on alone holding its run's lock; a stopped stage resumes on the next run.
#[cfg(target_os = "linux")]
fn stop_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have ended before the call above.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_: &mut Command) {}

/// The first line of a stage's log, written before the stage's own output.
const LOG_HEADER: &str = "# ssi reproduce: output of stage ";

/// How the output of a stage begins, in logs written before [`LOG_HEADER`]: its first line, or
/// a note, warning or error printed before it.
const OLD_LOG_STARTS: [&str; 5] = ["== ", "note: ", "warning: ", "error: ", "Error: "];

/// Refuses to replace `path` unless it is a stage log: a plain file (not a link, which could
/// point at a dataset) that is empty or begins as stage logs do.
fn check_log(path: &Path) -> Result<()> {
    use std::io::Read;
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        Ok(m) => m,
    };
    let mut start = Vec::new();
    let ours = meta.file_type().is_file()
        && std::fs::File::open(path)
            .and_then(|f| f.take(64).read_to_end(&mut start))
            .is_ok()
        && (start.is_empty()
            || start.starts_with(LOG_HEADER.as_bytes())
            || OLD_LOG_STARTS
                .iter()
                .any(|s| start.starts_with(s.as_bytes())));
    if !ours {
        bail!(
            "{} is where `ssi reproduce --jobs` writes a stage's output, and it is not a stage log (a link, a folder, or a file it did not write): it is left as it is; move it, or choose another --out",
            path.display()
        );
    }
    Ok(())
}

/// Opens a stage's log for writing (replacing the last attempt's), never through a link.
fn open_log(path: &Path, stage: &str) -> Result<std::fs::File> {
    use std::io::Write;
    check_log(path)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let mut log = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(log, "{LOG_HEADER}{stage}")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(log)
}

/// The lock a pipeline with `--jobs` holds on its `--out` (`OUT/.pipeline.lock`).
fn lock_pipeline(out: &Path) -> Result<std::fs::File> {
    let path = out.join(".pipeline.lock");
    match ssi_train::job::try_lock_file(&path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => bail!(
            "{} is being trained by another command with --jobs (it holds {}): wait for it to finish, or stop it and run again",
            out.display(),
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

fn finished(out: &Path, name: &str) -> bool {
    ssi_train::checkpoint::RunDir::new(out.join(name)).has_every_result()
}

/// The last `error:` line a stage wrote to its log, so that the reason of a failure is shown
/// where the failure is reported (the log's last 64 KiB are read: the error is at its end).
fn last_error(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 << 10))).ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    String::from_utf8_lossy(&tail)
        .split(['\n', '\r'])
        .rfind(|l| l.starts_with("error:"))
        .map(|l| l.chars().take(500).collect())
}

/// Trains the unfinished `tasks` with at most `jobs` processes at once: first those that other
/// tasks depend on, then the rest, each group in the given order as far as dependencies allow.
/// Each process writes its output to `out/NAME.log`. A failed stage stops new starts; the
/// running ones finish (their runs stay resumable) and the error names the log.
pub fn run_parallel(out: &Path, tasks: &[Task], jobs: usize) -> Result<()> {
    // Held until the last stage ends: a second pipeline in the same --out would replace the
    // logs of this one's running stages before its stages find their runs locked.
    let _pipeline = lock_pipeline(out)?;
    let exe = std::env::current_exe().context("cannot find the running ssi executable")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let unfinished: Vec<&Task> = tasks.iter().filter(|t| !finished(out, &t.name)).collect();
    // Every log this run will replace is checked before the first stage starts.
    for t in &unfinished {
        check_log(&out.join(format!("{}.log", t.name)))?;
    }
    // Runs that others wait for (the teachers) go first, so that the students can start while
    // the baselines fill the other slots, instead of waiting for the last teacher alone.
    let (first, rest): (Vec<&Task>, Vec<&Task>) = unfinished
        .iter()
        .copied()
        .partition(|t| unfinished.iter().any(|o| o.deps.contains(&t.name)));
    let mut pending: Vec<&Task> = first.into_iter().chain(rest).collect();
    let mut running: Vec<(&Task, Child, Instant)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    loop {
        while failed.is_empty() && running.len() < jobs.max(1) {
            // A dependency still running has written test.json but not yet exited (nor let go
            // of its run folder): it is finished once its process is.
            let ready =
                |d: &String| finished(out, d) && !running.iter().any(|(r, _, _)| &r.name == d);
            let Some(i) = pending.iter().position(|t| t.deps.iter().all(ready)) else {
                break;
            };
            let task = pending.remove(i);
            let log_path = out.join(format!("{}.log", task.name));
            let log = open_log(&log_path, &task.name)?;
            let mut cmd = Command::new(&exe);
            cmd.args(&args)
                .args(["--stage", &task.name])
                .stdout(log.try_clone()?)
                .stderr(log);
            stop_with_parent(&mut cmd);
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            outln!("== {} started (output: {})", task.name, log_path.display());
            running.push((task, child, Instant::now()));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait()? {
                None => i += 1,
                Some(status) => {
                    let (task, _, started) = running.remove(i);
                    let minutes = started.elapsed().as_secs_f64() / 60.0;
                    if status.success() {
                        outln!("   {} finished ({minutes:.1} min)", task.name);
                    } else {
                        let log = out.join(format!("{}.log", task.name));
                        let why = last_error(&log)
                            .map(|e| format!("\n  {e}"))
                            .unwrap_or_default();
                        errln!(
                            "error: stage {} failed ({status}); its output: {}{why}",
                            task.name,
                            log.display()
                        );
                        failed.push(task.name.clone());
                    }
                }
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "stage(s) {} failed (reasons above; output in {}/NAME.log); once their cause is fixed, the same command resumes them and keeps the finished stages",
            failed.join(", "),
            out.display()
        );
    }
    if !pending.is_empty() {
        let names: Vec<&str> = pending.iter().map(|t| t.name.as_str()).collect();
        bail!(
            "stage(s) {} need runs that are neither finished in {} nor trained by this command",
            names.join(", "),
            out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pipeline_at_a_time_in_an_out_folder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_pipeline(dir.path()).unwrap();
        let e = lock_pipeline(dir.path()).unwrap_err().to_string();
        assert!(e.contains("another command with --jobs"), "{e}");
        drop(held);
        lock_pipeline(dir.path()).unwrap();
    }

    #[test]
    fn a_failed_stage_is_reported_with_its_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bert4rec.log");
        let progress = "epoch 1 [=====>   ]\r".repeat(5000);
        std::fs::write(
            &log,
            format!("{LOG_HEADER}error: first\n{progress}error: runs/x is being trained by another process\n"),
        )
        .unwrap();
        assert_eq!(
            last_error(&log).as_deref(),
            Some("error: runs/x is being trained by another process")
        );
        std::fs::write(&log, "no error here\n").unwrap();
        assert_eq!(last_error(&log), None);
        assert_eq!(last_error(&dir.path().join("absent.log")), None);
    }

    /// Logs of earlier runs resume (whatever the stage printed first); a user's file or a link
    /// in their place is refused.
    #[test]
    fn only_stage_logs_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("hgn.log");
        for ours in [
            "",
            "# ssi reproduce: output of stage hgn\n",
            "== HGN (runs/hgn)\n",
            "note: no --data given: using the embedded synthetic shop (seed 42)\n",
            "error: stage failed\n",
        ] {
            std::fs::write(&log, ours).unwrap();
            check_log(&log).unwrap();
        }
        let f = open_log(&log, "hgn").unwrap();
        drop(f);
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .starts_with(LOG_HEADER)
        );
        std::fs::write(&log, "my notes").unwrap();
        assert!(check_log(&log).is_err());
        std::fs::remove_file(&log).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("data.txt"), &log).unwrap();
            assert!(check_log(&log).is_err() && open_log(&log, "hgn").is_err());
            assert!(!dir.path().join("data.txt").exists());
        }
    }
}
