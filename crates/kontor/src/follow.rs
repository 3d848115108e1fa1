//! Following a job from the command line: run it in this process unless a server's runner has
//! it, and show its progress (a bar on a terminal, a line per change otherwise) to its end.

use anyhow::Result;
use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

/// One look at a followed job.
pub struct Look<T> {
    pub value: T,
    /// `backup 3 running`, `restore 7 PROCESSING`, …
    pub label: String,
    pub done: i64,
    pub total: i64,
    pub finished: bool,
}

/// Runs job `(account, job_id)` here if nobody has claimed it, and follows it with `look`
/// until it ends; `summary` is printed last.
pub async fn follow<T, F, Fut>(
    jobs: &kontor_jobs::Jobs,
    key: (i64, i64),
    look: F,
    summary: impl Fn(&T) -> String,
) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Look<T>>>,
{
    let runner = async {
        // Claims the job unless a server did; then keeps trying in case that server dies.
        loop {
            if jobs.run_next(Some(key)).await? {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let watcher = async {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} records ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        let mut last_line = String::new();
        loop {
            let now = look().await?;
            if let Some(bar) = &bar {
                bar.set_length(now.total.max(0) as u64);
                bar.set_position(now.done.max(0) as u64);
                bar.set_message(now.label.clone());
            } else {
                let percent = if now.total > 0 {
                    (now.done * 100 / now.total).clamp(0, 100)
                } else {
                    0
                };
                let line = format!(
                    "{} {percent}% ({}/{} records)",
                    now.label, now.done, now.total
                );
                if line != last_line {
                    eprintln!("{line}");
                    last_line = line;
                }
            }
            if now.finished {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                eprintln!("{}", summary(&now.value));
                return anyhow::Ok(now.value);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::pin!(runner);
    tokio::pin!(watcher);
    let mut ran = false;
    loop {
        tokio::select! {
            r = &mut runner, if !ran => {
                r?;
                ran = true;
                // The job ran here: report at once rather than at the watcher's next look.
                let now = look().await?;
                if now.finished {
                    eprintln!("{}", summary(&now.value));
                    return Ok(now.value);
                }
            }
            w = &mut watcher => return w,
        }
    }
}
